"""A sign-in between its two steps (DESIGN §9): the password was right, the second step is still to come.

Kept in Flask's signed session cookie (HttpOnly, `__Host-` outside development, already there for the CSRF secret):
the user's id, where to go next, when the password step expires, and a keyed fingerprint of the password hash, so
that a password change or reset meanwhile voids it. It opens nothing by itself: no portal session exists until the
second step passes, and each attempt at it is rate-limited per user by the factors' services.
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, session

from app.accounts.models import User
from app.extensions import db

SESSION_KEY = "gh_second_step"
LIFETIME = timedelta(minutes=5)


@dataclass(frozen=True)
class PendingSignIn:
    user: User
    next_url: str


def begin(user: User, next_url: str, now: datetime) -> None:
    session[SESSION_KEY] = {"uid": user.id, "next": next_url, "exp": (now + LIFETIME).timestamp(),
                            "pw": _fingerprint(user.password_hash)}  # fmt: skip


def current(now: datetime) -> PendingSignIn | None:
    """The pending sign-in of this browser while it is valid: unexpired, its user enabled, its password unchanged."""
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int) or not isinstance(data.get("exp"), float):
        return None
    if now.timestamp() > data["exp"]:
        return None
    user = db.session.get(User, data["uid"])
    if user is None or user.disabled_at is not None:
        return None
    if not hmac.compare_digest(str(data.get("pw")), _fingerprint(user.password_hash)):
        return None
    return PendingSignIn(user, str(data.get("next") or ""))


def end() -> None:
    session.pop(SESSION_KEY, None)


def _fingerprint(password_hash: str) -> str:
    key = hashlib.sha256(b"gatehouse.second-step:" + current_app.config["SECRET_KEY"].encode()).digest()
    return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()[:32]
