"""Rate limits: their keys (client IP after ProxyFix, account e-mail, client id) and the one-hit limit of the
hottest endpoints, in shared storage or in this process's windows."""

import functools
import hashlib
import logging
import math
import threading
import time

from flask import current_app, request
from limits import parse
from limits.storage import MemoryStorage

log = logging.getLogger(__name__)


def client_ip_key() -> str:
    # remote_addr is the peer, or the trusted proxy's X-Forwarded-For entry when ProxyFix is on.
    return request.remote_addr or "unknown"


def login_account_key() -> str:
    email = (request.form.get("email") or "").strip().lower()
    # Hash so the limiter's storage never holds e-mail addresses.
    return "acct:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def failed_attempt(response) -> bool:
    """Only failed sign-ins count: a successful one answers 303."""
    return response.status_code != 303


def session_user_key() -> str:
    """Password checks made while signed in count per user, whatever the address."""
    from flask import g

    return f"user:{g.current_session.user_id}"


def token_client_key() -> str:
    """Token-endpoint attempts count per presented client id and address (brute force on a secret)."""
    basic = request.authorization
    client_id = (basic.username if basic and basic.username else None) or request.form.get("client_id") or "-"
    return f"client:{client_id[:64]}:{request.remote_addr}"


def internal_client_key(credentials: tuple[str, str] | None) -> str:
    """Grant and device checks count per presented client id (from parsed Basic credentials) and address."""
    return f"client:{credentials[0][:64] if credentials else '-'}:{request.remote_addr}"


def failed_client_authentication(response) -> bool:
    """Brute force on a client secret shows as 401s; a busy, authenticated app backend is not throttled."""
    return response.status_code == 401


LOCAL_WINDOWS_KEY = "gatehouse.local_windows"


class LocalWindows:
    """Fixed windows in this process's memory, for the hottest limits when no shared storage is configured, and
    as the fallback when it fails. limits' own MemoryStorage restarts an expiry timer thread every 10 ms under
    load; here an ended window is simply replaced, and ended ones are swept when the table is full."""

    def __init__(self, max_keys: int = 100_000, timer=time.time):
        self._timer = timer
        self._max_keys = max_keys
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, hits)
        self._lock = threading.Lock()

    def hit(self, item, key: str) -> int | None:
        """None when allowed, else the seconds until this key's window ends."""
        now = self._timer()
        with self._lock:
            end, hits = self._windows.get(key, (0.0, 0))
            if end <= now:
                if len(self._windows) >= self._max_keys:
                    self._sweep(now)
                end, hits = now + item.get_expiry(), 0
            self._windows[key] = (end, hits + 1)
        return None if hits < item.amount else max(1, math.ceil(end - now))

    def _sweep(self, now: float) -> None:
        """Drop ended windows; when half or more are still live (a flood of distinct keys), start over instead, so
        that a full table is swept at most once per max_keys / 2 new keys."""
        live = {key: window for key, window in self._windows.items() if window[0] > now}
        self._windows = live if len(live) < self._max_keys // 2 else {}


def retry_after(limit: str, scope: str, key: str) -> int | None:
    """One hit for the hottest endpoints, without Flask-Limiter's per-request machinery: None when allowed, else
    the seconds until the window resets. Shared (Redis) storage when configured; this process's windows when it
    is not, or when it fails (never no limit)."""
    from app.extensions import limiter  # the extensions module imports this one

    item = _parsed(limit)
    try:
        strategy = limiter.limiter
        if not isinstance(strategy.storage, MemoryStorage):
            if strategy.hit(item, scope, key):
                return None
            return max(1, math.ceil(strategy.get_window_stats(item, scope, key).reset_time - time.time()))
    except Exception as exc:  # any storage client error: keep limiting, in this process
        log.debug("rate-limit storage failed (%s): counting in this process", type(exc).__name__)
    return current_app.extensions[LOCAL_WINDOWS_KEY].hit(item, f"{scope}/{key}")


@functools.lru_cache(maxsize=32)
def _parsed(limit: str):
    return parse(limit)
