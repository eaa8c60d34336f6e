"""Signing keys (RS256, with a kid), the public JWKS, rotation, and JWT encode/decode via joserfc."""

import secrets
from datetime import datetime, timedelta

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import or_, select

from app.extensions import db
from app.oauth.models import SigningKey

# OpenID Connect Discovery §3: RS256 MUST be supported for ID tokens (and is the registration default).
ALGORITHM = "RS256"
KEY_BITS = 2048
LOADED_KEYS_EXTENSION_KEY = "gatehouse.signing_keys"


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
    return create_key(now)


def active_key(now: datetime) -> SigningKey:
    row = db.session.scalar(select(SigningKey).where(SigningKey.retired_at.is_(None)).order_by(SigningKey.id.desc()))
    return row or create_key(now)


def published_keys(now: datetime) -> list[SigningKey]:
    """The active key and retired keys whose tokens may still be live (retired within the longest lifetime)."""
    horizon = now - timedelta(seconds=current_app.config["ID_TOKEN_TTL_SECONDS"] + 60)
    return list(
        db.session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > horizon))
            .order_by(SigningKey.id.desc())
        )
    )


def jwks(now: datetime) -> dict:
    active_key(now)
    return {"keys": [row.public_jwk for row in published_keys(now)]}


def _private(row: SigningKey) -> RSAKey:
    """The decrypted key, loaded once per process: loading validates the RSA key, which costs ~30 ms."""
    loaded = current_app.extensions.setdefault(LOADED_KEYS_EXTENSION_KEY, {})
    if row.kid not in loaded:
        loaded[row.kid] = _load_private(row)
    return loaded[row.kid]


def _load_private(row: SigningKey) -> RSAKey:
    passwords = [current_app.config["SECRET_KEY"], *current_app.config["SECRET_KEY_FALLBACKS"]]
    for password in passwords:
        try:
            return RSAKey.import_key(row.private_pem, parameters={"kid": row.kid, "alg": ALGORITHM}, password=password)
        except (ValueError, TypeError):
            continue
    raise InvalidJWT("signing key cannot be decrypted with the configured secret keys")


def sign(claims: dict, typ: str, now: datetime) -> str:
    row = active_key(now)
    return jwt.encode({"alg": ALGORITHM, "kid": row.kid, "typ": typ}, claims, _private(row))


def verify(token: str, typ: str, now: datetime, *, allow_expired: bool = False) -> dict:
    """Decode a JWT we issued: only our keys, only RS256, the expected typ, not expired (unless a hint)."""
    keyset = KeySet([RSAKey.import_key(row.public_jwk) for row in published_keys(now)])
    try:
        decoded = jwt.decode(token, keyset, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidJWT(type(exc).__name__) from exc
    if decoded.header.get("typ") != typ:
        raise InvalidJWT("unexpected typ")
    expires = decoded.claims.get("exp")
    if not isinstance(expires, int) or (expires < int(now.timestamp()) and not allow_expired):
        raise InvalidJWT("expired")
    return decoded.claims
