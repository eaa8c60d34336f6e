"""The factors' keys, derived from SECRET_KEY, and TOTP secrets at rest (DESIGN §9).

TOTP secrets are sealed with Fernet (AES-128-CBC + HMAC-SHA256) so that a database dump alone yields no
authenticator secret. Sealed under the current SECRET_KEY, opened under it or any of SECRET_KEY_FALLBACKS, so
rotating SECRET_KEY keeps every authenticator working; a secret opened under a fallback is reported stale, for
its owner to re-seal it under the current key."""

import base64
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

# RFC 5869 §3.2: an info label binds each derived key to one use, so no two uses of SECRET_KEY share a key.
TOTP_SECRET_INFO = b"gatehouse/factors/totp-secret-encryption/v1"
RECOVERY_CODE_INFO = b"gatehouse/factors/recovery-code-hmac/v1"


@dataclass(frozen=True)
class OpenedSecret:
    value: str
    stale: bool  # sealed under a fallback key: re-seal it under the current one


def derived_keys(info: bytes) -> list[bytes]:
    """32-byte keys for one use: from SECRET_KEY first, then from each of SECRET_KEY_FALLBACKS in order."""
    config = current_app.config
    return [_derive(key, info) for key in [config["SECRET_KEY"], *config["SECRET_KEY_FALLBACKS"]]]


def seal(secret: str) -> str:
    return _fernets()[0].encrypt(secret.encode()).decode("ascii")


def open_sealed(token: str) -> OpenedSecret:
    """Raises cryptography.fernet.InvalidToken when no configured key opens it (a key was dropped too early)."""
    for index, fernet in enumerate(_fernets()):
        try:
            return OpenedSecret(fernet.decrypt(token.encode("ascii")).decode(), stale=index > 0)
        except InvalidToken:
            continue
    raise InvalidToken


def _fernets() -> list[Fernet]:
    return [Fernet(base64.urlsafe_b64encode(key)) for key in derived_keys(TOTP_SECRET_INFO)]


def _derive(secret_key: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret_key.encode())
