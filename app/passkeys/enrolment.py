"""A passkey as one of the account's second factors (DESIGN §9, issue 11 items 2 and 3): the first second factor
added brings a set of recovery codes, and removing the last one takes them away (as the authenticator app does in
app.factors.two_step). One call per view."""

from dataclasses import dataclass
from datetime import datetime

from app.accounts.models import User
from app.factors import recovery, totp, two_step
from app.passkeys import services
from app.passkeys.models import PasskeyCredential


@dataclass(frozen=True)
class Added:
    passkey: PasskeyCredential
    recovery_codes: list[str] | None  # a new set to show once, or None when the user holds unused codes


def add(
    user: User,
    handle: object,
    credential_json: object,
    device_name: str,
    now: datetime,
    *,
    ip: str | None = None,
    session_id: int | None = None,
) -> Added:
    """Register the passkey (services.register: raises CeremonyRefused, audited), then recovery codes if the user
    has none left."""
    passkey = services.register(user, handle, credential_json, device_name, now)
    return Added(passkey, two_step.codes_for_new_factor(user, now, ip=ip, session_id=session_id))


def remove(user: User, public_id: object, now: datetime) -> bool:
    """Remove one of the user's passkeys (the caller has required a fresh sign-in); when no second factor is left,
    the recovery codes go too: alone they would let a stolen code pass for a factor. Returns whether they went.
    Raises PasskeyNotFound, SecondStepRequired (the account requires two-step verification and it is the last)."""
    user.lock_for_factor_change()
    known = isinstance(public_id, str) and PasskeyCredential.by_public_id(user.id, public_id) is not None
    if known:  # an unknown id is services.remove's to refuse (PasskeyNotFound)
        others = len(services.list_for(user)) - 1 + int(totp.is_enabled(user))
        two_step.keep_last_factor(user, factors_left=others)
    services.remove(user, public_id, now)
    if two_step.overview(user).has_second_factor:
        return False
    recovery.discard(user)
    return True
