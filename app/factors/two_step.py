"""The two-step verification page's actions (DESIGN §9, issue 11 items 1 and 2): each is one call for its view,
built on the authenticator-app and recovery-code services. The rule they add: recovery codes exist only next to
a second factor, so the first factor turned on makes them and removing the last one discards them."""

from dataclasses import dataclass
from datetime import datetime

from app.accounts.models import User
from app.factors import recovery, totp
from app.factors.errors import NotEnrolled, SecondStepRequired
from app.factors.models import TotpAuthenticator
from app.passkeys import services as passkeys
from app.passkeys.models import PasskeyCredential

NO_SECOND_FACTOR = "Turn on a second factor first: recovery codes stand in for one."


@dataclass(frozen=True)
class Overview:
    """What the page shows: which factors are on, and how many recovery codes are left."""

    authenticator: TotpAuthenticator | None  # confirmed only; a pending set-up is not a factor
    passkeys: list[PasskeyCredential]
    recovery_codes_left: int

    recovery_code_count: int = recovery.CODE_COUNT  # a full set
    required: bool = False  # the account requires two-step verification: the last factor cannot be removed

    @property
    def has_second_factor(self) -> bool:
        return self.authenticator is not None or bool(self.passkeys)


@dataclass(frozen=True)
class TurnedOn:
    """The authenticator app is on; new_recovery_codes is the set to show once, or None when the user already
    had unused codes (made with another factor), which keep working."""

    new_recovery_codes: list[str] | None
    recovery_codes_left: int
    recovery_code_count: int = recovery.CODE_COUNT


def overview(user: User) -> Overview:
    return Overview(
        authenticator=TotpAuthenticator.confirmed_for_user(user.id),
        passkeys=passkeys.list_for(user),
        recovery_codes_left=recovery.remaining(user),
        required=user.account.two_step_required,
    )


def turn_on_authenticator(
    user: User, code: str, now: datetime, *, ip: str | None = None, session_id: int | None = None
) -> TurnedOn:
    """Confirm the pending set-up with one current code; recovery codes are made if the user has none left.
    Raises NotEnrolled, AlreadyEnrolled, WrongCode, CodeReused, TooManyAttempts (nothing is turned on then)."""
    totp.confirm_enrolment(user, code, now, ip=ip, session_id=session_id)
    codes = codes_for_new_factor(user, now, ip=ip, session_id=session_id)
    return TurnedOn(new_recovery_codes=codes, recovery_codes_left=recovery.remaining(user))


def codes_for_new_factor(
    user: User, now: datetime, *, ip: str | None = None, session_id: int | None = None
) -> list[str] | None:
    """After a second factor is added (an authenticator app, a passkey): a new set of recovery codes to show once
    when the user has no unused one, else None (the codes they hold keep working with every factor)."""
    if recovery.remaining(user):
        return None
    return recovery.generate(user, now, ip=ip, session_id=session_id)


def turn_off_authenticator(user: User, now: datetime, *, ip: str | None = None, session_id: int | None = None) -> bool:
    """Remove the authenticator app (the caller has required a fresh sign-in). When no second factor is left, the
    recovery codes go too: they stand in for a factor, and alone they would let a stolen code pass for one.
    Returns whether the recovery codes were discarded. Raises NotEnrolled, SecondStepRequired."""
    user.lock_for_factor_change()
    if not totp.is_enabled(user):
        raise NotEnrolled()
    keep_last_factor(user, factors_left=len(passkeys.list_for(user)))
    totp.remove(user, now, ip=ip, session_id=session_id)
    if passkeys.list_for(user):
        return False
    recovery.discard(user)
    return True


def keep_last_factor(user: User, factors_left: int) -> None:
    """DESIGN §9: while the user's account requires two-step verification, removing a factor must leave one.
    Raises SecondStepRequired (checked before anything is removed)."""
    if factors_left == 0 and user.account.two_step_required:
        raise SecondStepRequired()


def new_recovery_codes(user: User, now: datetime, *, ip: str | None = None, session_id: int | None = None) -> list[str]:
    """A new set to show once, voiding the old one (the caller has required a fresh sign-in). Raises NotEnrolled
    when the user has no second factor."""
    if not overview(user).has_second_factor:
        raise NotEnrolled(NO_SECOND_FACTOR)
    return recovery.generate(user, now, ip=ip, session_id=session_id)
