"""The relying party passkeys are bound to: its RP ID and origin, derived from ISSUER unless configured (DESIGN §9).

WebAuthn L3 §5.1.4.1 (and the HTML "secure context" rule the browsers apply): the origin is https, or http on
localhost; the RP ID is a domain (never an IP address) equal to the origin's host or a suffix of it.
"""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

from app.passkeys.errors import PasskeysUnavailable

RP_NAME = "Gatehouse"
DEFAULT_PORTS = {"https": 443, "http": 80}
# A DNS name in A-labels (punycode): labels of 1 to 63 letters, digits and inner hyphens, 253 characters in all.
DOMAIN = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str
    name: str = RP_NAME


def current() -> RelyingParty:
    """The app's relying party; raises PasskeysUnavailable when its settings are not usable for WebAuthn."""
    config = current_app.config
    return derive(config["ISSUER"], config.get("WEBAUTHN_RP_ID"), config.get("WEBAUTHN_ORIGIN"))


def derive(issuer: str, rp_id: str | None = None, origin: str | None = None) -> RelyingParty:
    """The origin of ISSUER (or WEBAUTHN_ORIGIN) and the host of that origin (or WEBAUTHN_RP_ID), validated."""
    scheme, host, port = _origin_parts(origin or issuer)
    rp = (rp_id or host).lower()
    if _is_ip_literal(rp) or not DOMAIN.fullmatch(rp):
        raise PasskeysUnavailable(message=f"Passkeys need a domain name as RP ID, not {rp!r}.")
    if host != rp and not host.endswith("." + rp):
        raise PasskeysUnavailable(message=f"The RP ID {rp!r} is neither the origin's host {host!r} nor its suffix.")
    netloc = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return RelyingParty(id=rp, origin=f"{scheme}://{netloc}")


def _origin_parts(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PasskeysUnavailable(message=f"Not a usable origin for passkeys: {url!r}.") from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        raise PasskeysUnavailable(message=f"Not a usable origin for passkeys: {url!r}.")
    if scheme == "http" and not (host == "localhost" or host.endswith(".localhost")):
        # Browsers offer WebAuthn only in a secure context: https, or http on localhost.
        raise PasskeysUnavailable(message=f"Passkeys need https (or http on localhost), not {url!r}.")
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
