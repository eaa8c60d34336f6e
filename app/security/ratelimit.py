"""Rate-limit keys: per client IP (after ProxyFix) and per account e-mail."""

import functools
import hashlib
import math
import time

from flask import request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter


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


_FALLBACK = None


def retry_after(limit: str, scope: str, key: str) -> int | None:
    """One hit against Flask-Limiter's configured storage, for the hottest endpoints: None when allowed, else
    the seconds until the window resets. A storage fault falls back to an in-process window, never to no limit."""
    global _FALLBACK
    from app.extensions import limiter  # the extensions module imports this one

    item = _parsed(limit)
    try:
        strategy = limiter.limiter
        allowed = strategy.hit(item, scope, key)
    except Exception:  # any storage client error: keep limiting, in this process
        _FALLBACK = _FALLBACK or FixedWindowRateLimiter(MemoryStorage())
        strategy = _FALLBACK
        allowed = strategy.hit(item, scope, key)
    if allowed:
        return None
    return max(1, math.ceil(strategy.get_window_stats(item, scope, key).reset_time - time.time()))


@functools.lru_cache(maxsize=32)
def _parsed(limit: str):
    return parse(limit)
