"""Recovery codes (DESIGN §9): 10 single-use codes, shown once, typed in place of an authenticator-app code.

Stored as HMAC-SHA256 under a key derived from SECRET_KEY, not with a slow password hash: each code holds about 59
random bits, so even a fast hash cannot be searched offline (a slow hash buys time only for guessable secrets such
as passwords), and the key means a database dump alone cannot test a guess at all. A deterministic hash also lets
one indexed compare-and-set UPDATE find and spend a code, where ten salted slow hashes would each need checking."""

import hashlib
import hmac
import secrets as random
from datetime import datetime

from app.accounts.models import User
from app.audit import services as audit
from app.audit.tags import EventTag
from app.factors import secrets
from app.factors.errors import CodeReused, WrongCode
from app.factors.models import RecoveryCode
from app.factors.totp import code_guess

FACTOR = "recovery_code"
CODE_COUNT = 10
# No 0/o, 1/l/i: nothing to misread on paper. 31 symbols, 12 of them: 12 * log2(31) ≈ 59.4 bits a code.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS, GROUP_LENGTH = 3, 4
CODE_LENGTH = GROUPS * GROUP_LENGTH
_SEPARATORS = str.maketrans("", "", "- \t\r\n")


def generate(user: User, now: datetime, *, ip: str | None = None, session_id: int | None = None) -> list[str]:
    """A new set of codes, like "abcd-efgh-2345", to show once; the old set (used codes included) is void."""
    codes = [_new_code() for _ in range(CODE_COUNT)]
    RecoveryCode.replace_all(user.id, [_hashes(_normalize(code))[0] for code in codes], now)
    _record(EventTag.RECOVERY_CODES_REGENERATE, user, ip, session_id, count=CODE_COUNT)
    return codes


def use(user: User, code: str, now: datetime, *, ip: str | None = None, session_id: int | None = None) -> int:
    """Spend one code in place of the authenticator app's (case, spaces and dashes ignored); returns how many are
    left. A wrong code is a guess on the authenticator app's limit. Raises WrongCode, CodeReused, TooManyAttempts."""
    with code_guess(user.id):
        normalized = _normalize(code)
        hashes = _hashes(normalized) if len(normalized) == CODE_LENGTH else []
        if not hashes or not RecoveryCode.use(user.id, hashes, now):
            reused = bool(hashes) and RecoveryCode.was_used(user.id, hashes)
            _record(
                EventTag.FACTOR_FAILURE, user, ip, session_id, factor=FACTOR, reason="reused" if reused else "wrong"
            )
            raise CodeReused("That recovery code was already used. Each one works once.") if reused else WrongCode()
    left = RecoveryCode.remaining(user.id)
    _record(EventTag.RECOVERY_CODE_USE, user, ip, session_id, remaining=left)
    return left


def remaining(user: User) -> int:
    """Unused codes: shown as "9 of 10 recovery codes left"; 0 when none were ever made."""
    return RecoveryCode.remaining(user.id)


def discard(user: User) -> int:
    """Delete every code (say, when the last second factor goes: codes alone are no second step); how many were."""
    return RecoveryCode.delete_for_user(user.id)


def _new_code() -> str:
    symbols = "".join(random.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(symbols[i : i + GROUP_LENGTH] for i in range(0, CODE_LENGTH, GROUP_LENGTH))


def _normalize(code: str) -> str:
    return (code or "").translate(_SEPARATORS).lower()


def _hashes(normalized: str) -> list[str]:
    """The code's HMAC under each key: SECRET_KEY's first (what new codes are stored under), then its fallbacks'."""
    keys = secrets.derived_keys(secrets.RECOVERY_CODE_INFO)
    return [hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest() for key in keys]


def _record(tag: EventTag, user: User, ip: str | None, session_id: int | None, **details) -> None:
    audit.record(tag, user_id=user.id, account_id=user.account_id, session_id=session_id, ip=ip, **details)
