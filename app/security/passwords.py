"""Password hashing with argon2id (argon2-cffi), of the NFKC form of what was typed."""

import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

HASHER_EXTENSION_KEY = "gatehouse.password_hasher"
DUMMY_HASH_EXTENSION_KEY = "gatehouse.dummy_password_hash"
# Longer inputs only cost CPU; nobody types a 1 kB password (NIST SP 800-63B-4 asks for at least 64).
MAX_PASSWORD_LENGTH = 1024


def build_hasher(config: dict) -> PasswordHasher:
    """argon2id with the library's RFC 9106 defaults, or cheaper parameters for the test suite."""
    if config.get("ARGON2_FAST"):
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


def install_hasher(app) -> None:
    """The app's hasher, and the hash unknown e-mails are checked against, made once here: made on first use (or on
    every use), it would cost an unknown e-mail's sign-in one hash more than a known one's."""
    hasher = build_hasher(app.config)
    app.extensions[HASHER_EXTENSION_KEY] = hasher
    app.extensions[DUMMY_HASH_EXTENSION_KEY] = hasher.hash("not-a-real-password")


def _hasher() -> PasswordHasher:
    return current_app.extensions[HASHER_EXTENSION_KEY]


def normalize(password: str) -> str:
    """NIST SP 800-63B-4 §3.1.1.2: Unicode passwords are NFKC-normalized before hashing, so that the same password
    typed on another keyboard or system (composed or decomposed accents, full-width forms) is the same password."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hasher().hash(normalize(password))


@dataclass(frozen=True)
class Verified:
    """A password check's outcome (true when the password is right), and whether its hash should be made again."""

    right: bool
    needs_rehash: bool = False

    def __bool__(self) -> bool:
        return self.right


def check_password(password_hash: str, password: str) -> Verified:
    normalized = normalize(password)
    if _verify(password_hash, normalized):
        return Verified(True, needs_rehash(password_hash))
    # Hashes made before normalization was introduced are of the text as typed; only a password that NFKC changes
    # can have one. When it verifies, the hash is remade of the NFKC form (hash_password), so this runs once.
    if normalized != password and _verify(password_hash, password):
        return Verified(True, needs_rehash=True)
    return Verified(False)


def verify_password(password_hash: str, password: str) -> bool:
    return check_password(password_hash, password).right


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def burn_verification(password: str) -> None:
    """Spend the same work as a real check (one verify, no hash), so unknown e-mails are not told apart by timing."""
    verify_password(current_app.extensions[DUMMY_HASH_EXTENSION_KEY], password)
