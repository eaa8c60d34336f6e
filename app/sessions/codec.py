"""The portal cookie: a signed handle (public id, user id, iat, exp), never a store of user data."""

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from itsdangerous import BadData, URLSafeSerializer

SESSION_COOKIE_SALT = "gatehouse.portal-session.v1"
# A cookie bigger than any handle we issue is refused before any parsing.
MAX_COOKIE_LENGTH = 512
# iat later than now by more than this is forged (we issued it) or a clock gone backwards.
MAX_CLOCK_SKEW_SECONDS = 5
# Cookies whose signature this process has checked, kept by their exact text (cleared when full).
VERIFIED_COOKIES_KEPT = 10_000


@dataclass(frozen=True)
class SessionHandle:
    public_id: str
    user_id: int
    issued_at: datetime
    expires_at: datetime
    # Verified only with an older key (rotation): the caller re-issues it under the current one.
    signed_with_fallback: bool = field(default=False, compare=False)


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
        self._current = URLSafeSerializer(secret_key, salt=SESSION_COOKIE_SALT)
        self._fallbacks = URLSafeSerializer(fallback_keys, salt=SESSION_COOKIE_SALT) if fallback_keys else None
        # Exact cookie text -> its verified payload (read, never changed) and key; only what verified is kept.
        self._verified: dict[str, tuple[object, bool]] = {}

    def encode(self, handle: SessionHandle) -> str:
        payload = [handle.public_id, handle.user_id, _ts(handle.issued_at), _ts(handle.expires_at)]
        return self._current.dumps(payload)

    def decode(self, value: str, now: datetime) -> SessionHandle:
        if not value or len(value) > MAX_COOKIE_LENGTH:
            raise CookieInvalid("empty or oversized cookie")
        payload, fallback = self._verified_payload(value)
        handle = _handle_from(payload, fallback)
        if handle.issued_at.timestamp() > now.timestamp() + MAX_CLOCK_SKEW_SECONDS:
            raise CookieInvalid("issued in the future")
        if now > handle.expires_at:  # same boundary as the registry: alive up to and at exp
            raise CookieExpired(handle)
        return handle

    def _verified_payload(self, value: str) -> tuple[object, bool]:
        """The payload of a cookie this store has verified before, else _verify's (a browser sends the same cookie
        on every request until it is re-issued: its signature is checked once per process, not per request)."""
        known = self._verified.get(value)
        if known is None:
            if not _canonical(value):
                raise CookieInvalid("not in the form we issue")
            known = self._verify(value)
            if len(self._verified) >= VERIFIED_COOKIES_KEPT:
                self._verified.clear()
            self._verified[value] = known
        return known

    def _verify(self, value: str) -> tuple[object, bool]:
        """One signature check in the common case; older keys are tried only when the current one fails."""
        for serializer, fallback in ((self._current, False), (self._fallbacks, True)):
            if serializer is None:
                break
            try:
                return serializer.loads(value), fallback
            except (BadData, ValueError, UnicodeError) as exc:
                error = exc
        raise CookieInvalid(type(error).__name__) from error


def _canonical(value: str) -> bool:
    """Only the exact text we issued: Python's base64 reads "+" and "/" as "-" and "_" and ignores a segment's
    unused low bits, so without this one signed cookie would have many spellings that all verify."""
    for segment in value.split("."):
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            return False
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
            return False
    return True


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _handle_from(payload, signed_with_fallback: bool) -> SessionHandle:
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
        signed_with_fallback=signed_with_fallback,
    )
