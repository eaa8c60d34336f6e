"""Rate limits: their keys (client IP after ProxyFix, account e-mail, client id) and retry_after, the one atomic
charge every limit is counted with (`limits`' fixed windows, in shared storage or this process's memory), and the
token endpoints' limit on failed client authentication, built on it."""

import functools
import hashlib
import ipaddress
import logging
import time
from dataclasses import dataclass

from flask import Flask, current_app, make_response, request
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from app.security import token_limit
from app.security.rate_windows import LocalWindows, SharedBatches, seconds_until

log = logging.getLogger(__name__)


def client_ip_key() -> str:
    # remote_addr is the peer, or the trusted proxy's X-Forwarded-For entry when ProxyFix is on.
    return address_key(request.remote_addr)


@functools.lru_cache(maxsize=4096)
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


def internal_client_key(credentials: tuple[str, str] | None, address: str | None) -> str:
    """Grant and device checks count per presented client id (from parsed Basic credentials) and address (the
    peer's, or the trusted proxy's X-Forwarded-For entry)."""
    return f"client:{credentials[0][:64] if credentials else '-'}:{address_key(address)}"


def failed_client_authentication(response) -> bool:
    """Brute force on a client secret shows as 401s; a busy, authenticated app backend is not throttled."""
    return response.status_code == 401


RATE_LIMITS_KEY = "gatehouse.rate_limits"


@dataclass(frozen=True)
class RateLimiters:
    """limits' fixed-window strategy on the shared storage (Redis, when configured), the same storage counted in
    batches for the hottest limits, and this process's exact windows (without shared storage, and as the fallback
    when it fails): app.security.rate_windows."""

    shared: FixedWindowRateLimiter | None
    batches: SharedBatches | None
    local: LocalWindows


def init_rate_limits(app: Flask) -> None:
    uri = app.config["RATELIMIT_STORAGE_URI"]
    shared = None
    if not uri.startswith("memory://"):
        shared = FixedWindowRateLimiter(storage_from_string(uri, **app.config["RATELIMIT_STORAGE_OPTIONS"]))
    batches = SharedBatches(shared) if shared is not None else None
    app.extensions[RATE_LIMITS_KEY] = RateLimiters(shared, batches, LocalWindows())


def limit_failed_client_authentication(view):
    """Token-endpoint style limit (TOKEN_RATE_LIMIT per presented client id and address): each attempt is charged
    before the view runs and given back unless the client failed to authenticate, so only guesses at a secret
    fill the bucket, and once it is full every attempt of that client id from that address waits. In Redis, at
    most one round trip per attempt, none for a busy client: a success keeps its hit for the next attempt, other
    hits given back go with the next charge (app.security.token_limit)."""

    @functools.wraps(view)
    def limited(*args, **kwargs):
        limiters = current_app.extensions[RATE_LIMITS_KEY]
        attempt = token_limit.charge(limiters, current_app.config["TOKEN_RATE_LIMIT"], "token", token_client_key())
        if attempt.wait is not None:
            raise TooManyRequests(retry_after=attempt.wait)
        response = make_response(view(*args, **kwargs))
        if not failed_client_authentication(response):
            attempt.give_back(succeeded=response.status_code == 200)
        return response

    return limited


def retry_after(limit: str, scope: str, key: str) -> int | None:
    """Charge one hit to every window of limit ("5 per minute;20 per hour"): charge() with one limit."""
    return charge(((limit, scope, key),))


def retry_after_batched(limit: str, scope: str, key: str) -> int | None:
    """retry_after for the limits every client-app call pays (the grant and device checks): counted in shared
    storage in batches (app.security.rate_windows.SharedBatches), so that most calls make no round trip for it."""
    return charge(((limit, scope, key),), batched=True)


def charge(limits, *, batched: bool = False) -> int | None:
    """Charge one hit to every window of every (limit, scope, key), each atomically (one Redis INCR, or under
    this process's lock), before the work they guard: None when all allow it, else the seconds until the last refusing
    window resets (RFC 9110 §10.2.3: sooner, the retry would be refused again). A hit is counted from the moment it
    is charged, so concurrent requests can never all pass a check made before any of them is counted. A refusal
    gives back what the allowing windows were charged, so a refused hit uses up no other window or limit. Shared
    (Redis) storage when configured; this process's windows when it is not, or when it fails (never no limit)."""
    allowed, waits = [], []
    for limit, scope, key in limits:
        for item in _parsed(limit):
            wait = _hit(item, scope, key, batched)
            if wait is None:
                allowed.append((item, scope, key))
            else:
                waits.append(wait)
    if not waits:
        return None
    for item, scope, key in allowed:
        _give_back(item, scope, key, batched)
    return max(waits)


def give_back(limits) -> None:
    """Undo an allowed charge() (for instance: the password it guarded was right, and only failures count)."""
    for limit, scope, key in limits:
        for item in _parsed(limit):
            _give_back(item, scope, key)


def _counter(item, scope: str, key: str) -> str:
    """limits' key for this window (its storage adds its own prefix in Redis)."""
    return item.key_for(current_app.config["RATELIMIT_KEY_PREFIX"], scope, key)


def _hit(item, scope: str, key: str, batched: bool = False) -> int | None:
    limiters = current_app.extensions[RATE_LIMITS_KEY]
    counter = _counter(item, scope, key)
    if limiters.shared is not None:
        try:
            if batched and limiters.batches is not None:
                return limiters.batches.hit(item, counter)
            return _hit_shared(limiters.shared, item, counter)
        except Exception as exc:  # any storage client error: keep limiting, in this process
            log.debug("rate-limit storage failed (%s): counting in this process", type(exc).__name__)
    return limiters.local.hit(item, counter)


def _hit_shared(strategy: FixedWindowRateLimiter, item, counter: str) -> int | None:
    """limits' FixedWindowRateLimiter.hit and get_window_stats, on the counter key already built."""
    storage = strategy.storage
    if storage.incr(counter, item.get_expiry()) <= item.amount:
        return None
    return seconds_until(storage.get_expiry(counter), time.time())


def _give_back(item, scope: str, key: str, batched: bool = False) -> None:
    limiters = current_app.extensions[RATE_LIMITS_KEY]
    counter = _counter(item, scope, key)
    if limiters.shared is not None:
        try:
            if batched and limiters.batches is not None:
                return limiters.batches.give_back(item, counter)
            return _give_back_shared(limiters.shared, item, counter)
        except Exception as exc:
            log.debug("rate-limit storage failed (%s): giving back in this process", type(exc).__name__)
    return limiters.local.give_back(counter)


def _give_back_shared(strategy: FixedWindowRateLimiter, item, counter: str) -> None:
    storage = strategy.storage
    if storage.incr(counter, item.get_expiry(), amount=-1) < 0:
        # The window ended in between: the counter was just created at -1; never leave credit in a new one.
        storage.incr(counter, item.get_expiry(), amount=1)


@functools.lru_cache(maxsize=32)
def _parsed(limit: str) -> tuple:
    return tuple(parse_many(limit))
