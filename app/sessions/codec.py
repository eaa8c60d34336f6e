"""The portal cookie: a signed handle (public id, user id, iat, exp), never a store of user data."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from itsdangerous import BadData, URLSafeSerializer

SESSION_COOKIE_SALT = "gatehouse.portal-session.v1"
# A cookie bigger than any handle we issue is refused before any parsing.
MAX_COOKIE_LENGTH = 512
# iat later than now by more than this is forged (we issued it) or a clock gone backwards.
MAX_CLOCK_SKEW_SECONDS = 5


@dataclass(frozen=True)
class SessionHandle:
    public_id: str
    user_id: int
    issued_at: datetime
    expires_at: datetime


class CookieInvalid(Exception):
    """Tampered, malformed, foreign or oversized: treated as no cookie at all."""


class CookieExpired(Exception):
    """Genuine but past its exp: no session, yet the browser did have one that ended."""

    def __init__(self, handle: SessionHandle):
        super().__init__("session cookie expired")
        self.handle = handle


class SessionStore(Protocol):
    def encode(self, handle: SessionHandle) -> str: ...
    def decode(self, value: str, now: datetime) -> SessionHandle: ...


class SignedCookieStore:
    """itsdangerous-signed handle; old keys verify (rotation), only the newest key signs."""

    def __init__(self, secret_key: str, fallback_keys: list[str] | None = None):
        # itsdangerous signs with the last key and verifies against all of them.
        keys = [*(fallback_keys or []), secret_key]
        self._serializer = URLSafeSerializer(keys, salt=SESSION_COOKIE_SALT)
        self._current_only = URLSafeSerializer(secret_key, salt=SESSION_COOKIE_SALT)

    def encode(self, handle: SessionHandle) -> str:
        payload = [handle.public_id, handle.user_id, _ts(handle.issued_at), _ts(handle.expires_at)]
        return self._serializer.dumps(payload)

    def decode(self, value: str, now: datetime) -> SessionHandle:
        if not value or len(value) > MAX_COOKIE_LENGTH:
            raise CookieInvalid("empty or oversized cookie")
        try:
            payload = self._serializer.loads(value)
        except (BadData, ValueError, UnicodeError) as exc:
            raise CookieInvalid(type(exc).__name__) from exc
        handle = _handle_from(payload)
        if handle.issued_at.timestamp() > now.timestamp() + MAX_CLOCK_SKEW_SECONDS:
            raise CookieInvalid("issued in the future")
        if now > handle.expires_at:  # same boundary as the registry: alive up to and at exp
            raise CookieExpired(handle)
        return handle

    def signed_with_current_key(self, value: str) -> bool:
        """True when no fallback key is needed; older cookies get re-issued."""
        try:
            self._current_only.loads(value)
        except BadData:
            return False
        return True


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _handle_from(payload) -> SessionHandle:
    if not (isinstance(payload, list) and len(payload) == 4):
        raise CookieInvalid("unexpected payload shape")
    public_id, user_id, iat, exp = payload
    if not (isinstance(public_id, str) and 0 < len(public_id) <= 64):
        raise CookieInvalid("bad public id")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**42 for v in (user_id, iat, exp)):
        raise CookieInvalid("bad numbers")
    return SessionHandle(
        public_id=public_id,
        user_id=user_id,
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
