"""Password hashing with argon2id (argon2-cffi)."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

HASHER_EXTENSION_KEY = "gatehouse.password_hasher"
# Longer inputs only cost CPU; nobody types a 1 kB password.
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 10


def build_hasher(config: dict) -> PasswordHasher:
    """argon2id with the library's RFC 9106 defaults, or cheaper parameters for the test suite."""
    if config.get("ARGON2_FAST"):
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


def _hasher() -> PasswordHasher:
    return current_app.extensions[HASHER_EXTENSION_KEY]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def burn_verification(password: str) -> None:
    """Spend the same work as a real check, so unknown e-mails are not told apart by timing."""
    hasher = _hasher()
    dummy = current_app.extensions.setdefault("gatehouse.dummy_hash", hasher.hash("not-a-real-password"))
    verify_password(dummy, password)
