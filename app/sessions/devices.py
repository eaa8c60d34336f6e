"""What we record about the device behind a sign-in: a readable name and, optionally, a place."""

import logging
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeGuard

from ua_parser import parse

log = logging.getLogger(__name__)

UNKNOWN_DEVICE = "Unknown device"
MAX_USER_AGENT_LENGTH = 512
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
# ua-parser keeps historical family names; people know the current ones.
SYSTEM_NAMES = {"Mac OS X": "macOS"}


@dataclass(frozen=True)
class RequestMeta:
    """What a service may know about the request: never the request itself."""

    ip: str
    user_agent: str
    device_id: str


def new_device_id() -> str:
    return secrets.token_urlsafe(24)


def valid_device_id(value: str | None) -> TypeGuard[str]:
    return value is not None and DEVICE_ID_PATTERN.fullmatch(value) is not None


@lru_cache(maxsize=2048)
def device_name(user_agent: str) -> str:
    """ "Chrome on macOS"; "Unknown device" for an empty or unrecognisable agent."""
    if not user_agent or not user_agent.strip():
        return UNKNOWN_DEVICE
    result = parse(user_agent[:MAX_USER_AGENT_LENGTH])
    browser = result.user_agent.family if result.user_agent else None
    system = result.os.family if result.os else None
    browser = None if browser in (None, "Other") else browser
    system = None if system in (None, "Other") else SYSTEM_NAMES.get(system, system)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or UNKNOWN_DEVICE


@lru_cache(maxsize=2048)
def agent_details(user_agent: str) -> str:
    """ "Chrome 124 · macOS 10.15": the browser and system with their versions, for the devices list."""
    if not user_agent or not user_agent.strip():
        return "No browser details were sent"
    result = parse(user_agent[:MAX_USER_AGENT_LENGTH])
    versioned = [_versioned(result.user_agent, depth=1), _versioned(result.os, depth=2)]
    parts = [part for part in versioned if part]
    return " · ".join(parts) or "Unrecognised browser"


def _versioned(part, depth: int) -> str | None:
    if part is None or part.family in (None, "Other"):
        return None
    version = ".".join(v for v in (part.major, part.minor)[:depth] if v)
    return f"{SYSTEM_NAMES.get(part.family, part.family)} {version}".strip()


class GeoLocator:
    """City and country from a MaxMind database, when one is configured."""

    def __init__(self, path: str | None):
        self._reader = None
        if path:
            import maxminddb

            self._reader = maxminddb.open_database(path)

    def locate(self, ip: str) -> str | None:
        if self._reader is None:
            return None
        try:
            record = self._reader.get(ip)
        except ValueError:
            return None
        return _place(record) if isinstance(record, dict) else None


def _place(record: dict) -> str | None:
    city = (record.get("city") or {}).get("names", {}).get("en")
    country = (record.get("country") or {}).get("names", {}).get("en")
    parts = [p for p in (city, country) if p]
    return ", ".join(parts) or None
