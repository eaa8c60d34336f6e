"""Which new passwords are accepted (NIST SP 800-63B-4 §3.1.1.2): a minimum length that depends on whether the
password is the only factor, a generous maximum, any characters (compared in their NFKC form), no composition rules,
and never a password on the bundled list of common passwords, repetitive or sequential, context-specific (the
user's e-mail or name, the service's name) or, when a range API is configured, seen in a breach."""

import functools
import gzip
import itertools
import re
import unicodedata
from pathlib import Path

from app.security import breached
from app.security.passwords import MAX_PASSWORD_LENGTH, normalize

# §3.1.1.2: at least 15 characters when the password is the only authenticator, at least 8 as part of multi-factor.
MIN_LENGTH_ONLY_FACTOR = 15
MIN_LENGTH_WITH_SECOND_FACTOR = 8
COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"
SERVICE_NAME = "gatehouse"
LONGEST_REPEATED_UNIT = 4
# Runs an attacker walks (ascending or descending): digits and letters wrap around (…7890123…), the keyboard's
# letter rows continue into each other (qwertyuiopasdf…).
SEQUENCES = (
    ("0123456789", True),
    ("abcdefghijklmnopqrstuvwxyz", True),
    ("1234567890qwertyuiopasdfghjklzxcvbnm", False),
)
# Default-ignorable code points that are not format (Cf) characters: combining grapheme joiner, Mongolian and other
# variation selectors, Hangul fillers. They render as nothing, so they add no strength.
_INVISIBLE_NOT_FORMAT = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)
_EDGE_DIGITS_AND_SYMBOLS = re.compile(r"^[\W\d_]+|[\W\d_]+$")

TOO_COMMON = "This password is on a list of common passwords that attackers try first. Choose another."
COMMON_VARIANT = (
    "This password is a common password with digits or symbols added, or repeated; attackers try those too. "
    "Choose another."
)
REPETITIVE = "This password repeats the same few characters. Choose another."
SEQUENTIAL = "This password is a run of consecutive characters (like 12345, abcde or qwerty). Choose another."
PERSONAL = "This password is mostly your e-mail address, your name or this service's name. Choose another."
BREACHED = "This password has appeared in a data breach, so attackers try it. Choose another."


def minimum_length(has_second_factor: bool) -> int:
    return MIN_LENGTH_WITH_SECOND_FACTOR if has_second_factor else MIN_LENGTH_ONLY_FACTOR


def hint(has_second_factor: bool) -> str:
    """The rule, said before anyone gets it wrong."""
    return (
        f"At least {minimum_length(has_second_factor)} characters. Spaces, accents and any symbols are welcome; "
        "no digits or capitals are required. A passphrase of a few unrelated words works well. Common and "
        "breached passwords are refused, and so are ones built on your name, your e-mail or a repeated pattern."
    )


def problem(password: str, has_second_factor: bool, email: str = "", name: str = "") -> str | None:
    """None when the password may be set, else the sentence that says why not: local_problem, then the range API."""
    return local_problem(password, has_second_factor, email, name) or breach_problem(password)


def breach_problem(password: str) -> str | None:
    """The range API alone (asked last: it is slow, and it is told a hash prefix of the password)."""
    return BREACHED if breached.seen_in_breach(normalize(password)) else None


def local_problem(password: str, has_second_factor: bool, email: str = "", name: str = "") -> str | None:
    """The rules checked in this process. has_second_factor: the account signs in with a second step too (then 8
    characters are enough); email and name: the user's, which §3.1.1.2 counts among context-specific words."""
    candidate = normalize(password)
    if len(candidate) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    visible = _without_invisible(candidate)
    minimum = minimum_length(has_second_factor)
    if len(visible) < minimum:
        hidden = len(candidate) - len(visible)
        uncounted = (
            f", not counting {hidden} invisible or control character{'s' if hidden != 1 else ''}" if hidden else ""
        )
        return f"Use at least {minimum} characters (this one has {len(visible)}{uncounted})."
    lowered = visible.lower()
    if _repeated_unit(lowered, LONGEST_REPEATED_UNIT):
        return REPETITIVE
    if _sequential(lowered):
        return SEQUENTIAL
    if lowered in common_passwords():
        return TOO_COMMON
    if _mostly_context(lowered, email, name):
        return PERSONAL
    core = _EDGE_DIGITS_AND_SYMBOLS.sub("", lowered)
    if core and (_repeated_unit(core, len(core) // 2) or core) in common_passwords():
        return COMMON_VARIANT
    return None


def _without_invisible(text: str) -> str:
    """Without control (Cc) and format (Cf: zero-width spaces, soft hyphens, byte-order marks…) characters, nor the
    other default-ignorable ones: what is left is what a password's strength is made of."""
    kept = "".join(char for char in text if unicodedata.category(char) not in ("Cc", "Cf"))
    return _INVISIBLE_NOT_FORMAT.sub("", kept)


def _repeated_unit(text: str, longest: int) -> str:
    """The shortest unit of at most `longest` characters that text is made of repeated (a partial last repetition
    included), or the empty string."""
    for size in range(1, min(longest, len(text) - 1) + 1):
        unit = text[:size]
        if (unit * (len(text) // size + 1)).startswith(text):
            return unit
    return ""


def _sequential(text: str) -> bool:
    """The whole password is one run along a sequence, in one direction."""
    for sequence, wraps in SEQUENCES:
        if not all(char in sequence for char in text):
            continue
        steps = {_step(sequence, wraps, a, b) for a, b in itertools.pairwise(text)}
        if steps in ({1}, {-1}):
            return True
    return False


def _step(sequence: str, wraps: bool, a: str, b: str) -> int:
    step = sequence.index(b) - sequence.index(a)
    if wraps and abs(step) == len(sequence) - 1:
        return -1 if step > 0 else 1
    return step


def _mostly_context(text: str, email: str, name: str) -> bool:
    """Half or more of the password is the user's e-mail, its local part (4 characters or more), name, or this
    service's name."""
    email = normalize(email).strip().lower()
    local = email.partition("@")[0]
    name = normalize(name).strip().lower()
    words = {email, name, name.replace(" ", ""), SERVICE_NAME}
    if len(local) >= 4:
        words.add(local)
    return any(len(word) >= 3 and text.count(word) * len(word) * 2 >= len(text) for word in words)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list (see data/README.md), read once per process."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())
