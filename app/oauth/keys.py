"""Signing keys (RS256, with a kid), the public JWKS, rotation, and JWT encode/decode via joserfc."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import or_, select

from app.extensions import db
from app.oauth.models import SigningKey

# OpenID Connect Discovery §3: RS256 MUST be supported for ID tokens (and is the registration default).
ALGORITHM = "RS256"
KEY_BITS = 2048
LOADED_KEYS_EXTENSION_KEY = "gatehouse.signing_keys"
KEY_RING_EXTENSION_KEY = "gatehouse.key_ring"
# Issue 13: the keys are read once per process per this many seconds (app clock), not on every signature. A rotation
# made by another process signs everywhere within it (the old key stays published far longer, so nothing fails
# meanwhile); a token signed by a key this process has not read yet makes it read them again at once.
KEY_RING_SECONDS = 5


class InvalidJWT(ValueError):
    """Bad signature, unknown kid, wrong alg or typ, or claims that do not check out."""


def _password() -> str:
    return current_app.config["SECRET_KEY"]


def create_key(now: datetime) -> SigningKey:
    key = RSAKey.generate_key(KEY_BITS)
    kid = secrets.token_urlsafe(12)
    public = key.as_dict(private=False) | {"kid": kid, "alg": ALGORITHM, "use": "sig"}
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_pem=key.as_pem(private=True, password=_password()).decode(),
        public_jwk=public,
        created_at=now,
    )
    db.session.add(row)
    db.session.flush()
    return row


def rotate(now: datetime) -> SigningKey:
    """A new key signs from now on; older keys keep verifying until their tokens have expired."""
    for row in db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        row.retired_at = now
    forget_ring()
    return create_key(now)


def _horizon(now: datetime) -> datetime:
    """Retired keys stay published while tokens they signed may still be live (the longest lifetime, plus a minute)."""
    return now - timedelta(seconds=current_app.config["ID_TOKEN_TTL_SECONDS"] + 60)


def published_keys(now: datetime) -> list[SigningKey]:
    """The active key and retired keys whose tokens may still be live, newest first."""
    query = select(SigningKey).where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > _horizon(now)))
    return list(db.session.scalars(query.order_by(SigningKey.id.desc())))


@dataclass(frozen=True)
class _RingKey:
    kid: str
    public_jwk: dict
    public: RSAKey
    private_pem: str
    retired_at: datetime | None


@dataclass(frozen=True)
class _KeyRing:
    """The keys as one process last read them, newest first: the newest signs; which are published is decided at
    each use, by the time of that use, exactly as published_keys would."""

    read_at: datetime
    keys: tuple[_RingKey, ...]

    def fresh(self, now: datetime) -> bool:
        return self.read_at <= now < self.read_at + timedelta(seconds=KEY_RING_SECONDS)

    def published(self, now: datetime) -> list[_RingKey]:
        horizon = _horizon(now)
        return [key for key in self.keys if key.retired_at is None or key.retired_at > horizon]


def _ring(now: datetime, *, reread: bool = False) -> _KeyRing:
    """This process's key ring, read again when older than KEY_RING_SECONDS (or when asked)."""
    ring: _KeyRing | None = current_app.extensions.get(KEY_RING_EXTENSION_KEY)
    if ring is not None and ring.fresh(now) and not reread:
        return ring
    rows = published_keys(now)
    if not rows or rows[0].retired_at is not None:
        # The very first use makes the first key, in this request's transaction: not kept until it is committed.
        rows.insert(0, create_key(now))
        keep = False
    else:
        keep = True
    ring = _KeyRing(now, tuple(_RingKey(r.kid, r.public_jwk, RSAKey.import_key(r.public_jwk), r.private_pem,
                                        r.retired_at) for r in rows))  # fmt: skip
    if keep:
        current_app.extensions[KEY_RING_EXTENSION_KEY] = ring
    return ring


def forget_ring() -> None:
    """After a rotation in this process: the next use reads the keys again."""
    current_app.extensions.pop(KEY_RING_EXTENSION_KEY, None)


def jwks(now: datetime) -> dict:
    return {"keys": [key.public_jwk for key in _ring(now).published(now)]}


def _private(key: _RingKey) -> RSAKey:
    """The decrypted key, loaded once per process: loading validates the RSA key, which costs ~30 ms."""
    loaded = current_app.extensions.setdefault(LOADED_KEYS_EXTENSION_KEY, {})
    if key.kid not in loaded:
        loaded[key.kid] = _load_private(key)
    return loaded[key.kid]


def _load_private(key: _RingKey) -> RSAKey:
    passwords = [current_app.config["SECRET_KEY"], *current_app.config["SECRET_KEY_FALLBACKS"]]
    for password in passwords:
        try:
            return RSAKey.import_key(key.private_pem, parameters={"kid": key.kid, "alg": ALGORITHM}, password=password)
        except (ValueError, TypeError):
            continue
    raise InvalidJWT("signing key cannot be decrypted with the configured secret keys")


def sign(claims: dict, typ: str, now: datetime) -> str:
    key = _ring(now).keys[0]
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": typ}, claims, _private(key))


def verify(token: str, typ: str, now: datetime, *, allow_expired: bool = False) -> dict:
    """Decode a JWT we issued: only our keys, only RS256, the expected typ, not expired (unless a hint). A kid this
    process has not read yet (another process rotated) makes it read the keys again, once."""
    try:
        try:
            decoded = _decode(token, _ring(now), now)
        except InvalidKeyIdError:
            decoded = _decode(token, _ring(now, reread=True), now)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidJWT(type(exc).__name__) from exc
    if decoded.header.get("typ") != typ:
        raise InvalidJWT("unexpected typ")
    expires = decoded.claims.get("exp")
    if not isinstance(expires, int) or (expires < int(now.timestamp()) and not allow_expired):
        raise InvalidJWT("expired")
    return decoded.claims


def _decode(token: str, ring: _KeyRing, now: datetime) -> jwt.Token:
    return jwt.decode(token, KeySet([key.public for key in ring.published(now)]), algorithms=[ALGORITHM])
