"""Rate limits: their keys (client IP after ProxyFix, account e-mail, client id) and retry_after, the one atomic
charge that password guesses and the hottest endpoints are limited with, in shared storage or this process's windows."""

import functools
import hashlib
import ipaddress
import logging
import math
import threading
import time

from flask import current_app, request
from limits import parse_many
from limits.storage import MemoryStorage

log = logging.getLogger(__name__)


def client_ip_key() -> str:
    # remote_addr is the peer, or the trusted proxy's X-Forwarded-For entry when ProxyFix is on.
    return address_key(request.remote_addr)


def address_key(address: str | None) -> str:
    """What limits keyed by address count per: an IPv4 address (also when IPv4-mapped, ::ffff:a.b.c.d), or an
    IPv6 /64, the smallest prefix a subscriber is given (RFC 6177, RFC 7421): one client holds 2^64 addresses."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def account_key(email: str) -> str:
    """Password guesses count per account (by its e-mail as typed, so unknown addresses count too)."""
    # Hashed so that the limiter's storage never holds e-mail addresses.
    return "acct:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def token_client_key() -> str:
    """Token-endpoint attempts count per presented client id and address (brute force on a secret)."""
    basic = request.authorization
    client_id = (basic.username if basic and basic.username else None) or request.form.get("client_id") or "-"
    return f"client:{client_id[:64]}:{client_ip_key()}"


def internal_client_key(credentials: tuple[str, str] | None) -> str:
    """Grant and device checks count per presented client id (from parsed Basic credentials) and address."""
    return f"client:{credentials[0][:64] if credentials else '-'}:{client_ip_key()}"


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

    def give_back(self, key: str) -> None:
        """One hit fewer in key's window, if it is still the window that was hit."""
        now = self._timer()
        with self._lock:
            end, hits = self._windows.get(key, (0.0, 0))
            if end > now and hits > 0:
                self._windows[key] = (end, hits - 1)

    def _sweep(self, now: float) -> None:
        """Drop ended windows; when half or more are still live (a flood of distinct keys), start over instead, so
        that a full table is swept at most once per max_keys / 2 new keys."""
        live = {key: window for key, window in self._windows.items() if window[0] > now}
        self._windows = live if len(live) < self._max_keys // 2 else {}


def retry_after(limit: str, scope: str, key: str) -> int | None:
    """Charge one hit to every window of limit ("5 per minute;20 per hour"): charge() with one limit."""
    return charge(((limit, scope, key),))


def charge(limits) -> int | None:
    """Charge one hit to every window of every (limit, scope, key), each atomically (one Redis INCR, or under this
    process's lock), before the work they guard: None when all allow it, else the seconds until the last refusing
    window resets (RFC 9110 §10.2.3: sooner, the retry would be refused again). A hit is counted from the moment it
    is charged, so concurrent requests can never all pass a check made before any of them is counted. A refusal
    gives back what the allowing windows were charged, so a refused hit uses up no other window or limit. Shared
    (Redis) storage when configured; this process's windows when it is not, or when it fails (never no limit)."""
    allowed, waits = [], []
    for limit, scope, key in limits:
        for item in _parsed(limit):
            wait = _hit(item, scope, key)
            if wait is None:
                allowed.append((item, scope, key))
            else:
                waits.append(wait)
    if not waits:
        return None
    for item, scope, key in allowed:
        _give_back(item, scope, key)
    return max(waits)


def give_back(limits) -> None:
    """Undo an allowed charge() (for instance: the password it guarded was right, and only failures count)."""
    for limit, scope, key in limits:
        for item in _parsed(limit):
            _give_back(item, scope, key)


def _shared_strategy():
    """Flask-Limiter's strategy on shared storage, or None when it has none (or its storage is down)."""
    from app.extensions import limiter  # the extensions module imports this one

    strategy = limiter.limiter
    return None if isinstance(strategy.storage, MemoryStorage) else strategy


def _identifiers(scope: str, key: str) -> tuple[str, str, str]:
    return current_app.config["RATELIMIT_KEY_PREFIX"], scope, key


def _hit(item, scope: str, key: str) -> int | None:
    try:
        strategy = _shared_strategy()
        if strategy is not None:
            if strategy.hit(item, *_identifiers(scope, key)):
                return None
            reset_time = strategy.get_window_stats(item, *_identifiers(scope, key)).reset_time
            return max(1, math.ceil(reset_time - time.time()))
    except Exception as exc:  # any storage client error: keep limiting, in this process
        log.debug("rate-limit storage failed (%s): counting in this process", type(exc).__name__)
    return current_app.extensions[LOCAL_WINDOWS_KEY].hit(item, item.key_for(scope, key))


def _give_back(item, scope: str, key: str) -> None:
    try:
        strategy = _shared_strategy()
        if strategy is not None:
            storage, counter = strategy.storage, item.key_for(*_identifiers(scope, key))
            if storage.incr(counter, item.get_expiry(), amount=-1) < 0:
                # The window ended in between: the counter was just created at -1; never leave credit in a new one.
                storage.incr(counter, item.get_expiry(), amount=1)
            return
    except Exception as exc:
        log.debug("rate-limit storage failed (%s): giving back in this process", type(exc).__name__)
    current_app.extensions[LOCAL_WINDOWS_KEY].give_back(item.key_for(scope, key))


@functools.lru_cache(maxsize=32)
def _parsed(limit: str) -> tuple:
    return tuple(parse_many(limit))
