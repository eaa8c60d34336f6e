"""Token material: random, prefixed, stored as digests only (STYLE rule 6, catalogue #32)."""

import base64
import functools
import hashlib
import hmac
import secrets

from flask import current_app

TOKEN_BYTES = 32  # 256 bits
REFRESH_PREFIX = "ghr_"
GRANT_PREFIX = "ghg_"
CODE_PREFIX = "ghc_"
CLIENT_SECRET_PREFIX = "ghs_"
SUCCESSOR_SALT = b"gatehouse.refresh-successor.v1"
CLIENT_SECRET_SALT = b"gatehouse.client-secret.v1"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """Lookup digest of a 256-bit random token: SHA-256 is enough, as nothing can be guessed."""
    return hashlib.sha256(token.encode()).hexdigest()


@functools.lru_cache(maxsize=32)
def _derived_key(secret_key: str, salt: bytes) -> bytes:
    """One key per (secret key, purpose): derived once per process, not on every client authentication."""
    return hmac.digest(secret_key.encode(), salt, "sha256")


def successor_of(refresh_token: str) -> str:
    """The refresh token that replaces this one: derivable from the presented value alone.

    DESIGN §5: inside the grace window the immediate predecessor gets the *same* successor, yet only digests
    are stored; an HMAC of the predecessor under a server key is reproducible and unguessable.
    """
    key = _derived_key(current_app.config["SECRET_KEY"], SUCCESSOR_SALT)
    mac = hmac.digest(key, refresh_token.encode(), "sha256")
    return REFRESH_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def client_secret_digests(secret: str) -> list[str]:
    """Keyed digests of a client secret under the current and every fallback secret key."""
    keys = [current_app.config["SECRET_KEY"], *current_app.config["SECRET_KEY_FALLBACKS"]]
    return [hmac.digest(_derived_key(k, CLIENT_SECRET_SALT), secret.encode(), "sha256").hex() for k in keys]


def client_secret_matches(secret: str, stored: str | None) -> bool:
    # Constant-time comparison against each key generation (rotation keeps clients working); a public client has none.
    return stored is not None and any(
        hmac.compare_digest(candidate, stored) for candidate in client_secret_digests(secret)
    )
