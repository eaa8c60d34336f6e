"""Which new passwords are accepted (NIST SP 800-63B-4 §3.1.1.2): a minimum length that depends on whether the
password is the only factor, a generous maximum, any characters (compared in their NFKC form), no composition rules,
and never a password on the bundled list of common passwords or, when a range API is configured, seen in a breach."""

import functools
import gzip
from pathlib import Path

from app.security import breached
from app.security.passwords import MAX_PASSWORD_LENGTH, normalize

# §3.1.1.2: at least 15 characters when the password is the only authenticator, at least 8 as part of multi-factor.
MIN_LENGTH_ONLY_FACTOR = 15
MIN_LENGTH_WITH_SECOND_FACTOR = 8
COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"

TOO_COMMON = "This password is on a list of common passwords that attackers try first. Choose another."
BREACHED = "This password has appeared in a data breach, so attackers try it. Choose another."


def minimum_length(has_second_factor: bool) -> int:
    return MIN_LENGTH_WITH_SECOND_FACTOR if has_second_factor else MIN_LENGTH_ONLY_FACTOR


def hint(has_second_factor: bool) -> str:
    """The rule, said before anyone gets it wrong."""
    return (
        f"At least {minimum_length(has_second_factor)} characters. Spaces, accents and any symbols are welcome; "
        "no digits or capitals are required. A passphrase of a few unrelated words works well. Common and "
        "breached passwords are refused."
    )


def problem(password: str, has_second_factor: bool) -> str | None:
    """None when the password may be set, else the sentence that says why not. has_second_factor: the account
    signs in with a second step too (then 8 characters are enough)."""
    candidate = normalize(password)
    minimum = minimum_length(has_second_factor)
    if len(candidate) < minimum:
        return f"Use at least {minimum} characters (this one has {len(candidate)})."
    if len(candidate) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    if candidate.lower() in common_passwords():
        return TOO_COMMON
    if breached.seen_in_breach(candidate):
        return BREACHED
    return None


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list (see data/README.md), read once per process."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())
