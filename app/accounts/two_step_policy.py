"""Owners may require two-step verification for their account (DESIGN §9, issue 11 item 5): the switch on the
security card, who has which second factors, and the question the request guard (app.web.two_step_required) asks
of every signed-in request."""

from dataclasses import dataclass

from app.accounts.models import Account, User
from app.accounts.services import has_second_factor
from app.audit import services as audit
from app.audit.tags import EventTag
from app.factors.models import RecoveryCode, TotpAuthenticator
from app.factors.recovery import CODE_COUNT
from app.passkeys.models import PasskeyCredential


@dataclass(frozen=True)
class PersonFactors:
    """One person of the account and their second factors, as the people list shows them."""

    user: User
    authenticator_app: bool
    passkeys: int
    recovery_codes_left: int

    @property
    def has_second_factor(self) -> bool:
        return self.authenticator_app or self.passkeys > 0


@dataclass(frozen=True)
class TwoStepCard:
    """What the security card's two-step section shows."""

    required: bool
    people: list[PersonFactors]
    recovery_code_count: int = CODE_COUNT

    @property
    def without_second_factor(self) -> list[PersonFactors]:
        return [person for person in self.people if not person.has_second_factor]

    def has_second_factor(self, user_id: int) -> bool:
        return any(person.user.id == user_id and person.has_second_factor for person in self.people)


@dataclass(frozen=True)
class Switched:
    changed: bool  # False: the account already was as asked (nothing recorded)
    actor_must_set_up: bool  # the owner who pressed it has no second factor and is sent to set one up


def card(account: Account) -> TwoStepCard:
    """The account's people with their factors, in one query however many they are."""
    rows = User.in_account_with(
        account.id,
        TotpAuthenticator.confirmed_exists(User.id),
        PasskeyCredential.count_of(User.id),
        RecoveryCode.unused_count_of(User.id),
    )
    return TwoStepCard(account.two_step_required, [PersonFactors(*row) for row in rows])


def set_required(
    account: Account, required: bool, *, actor: User, ip: str | None = None, session_id: int | None = None
) -> Switched:
    """Turn the requirement on or off (the caller has checked that the actor is one of the account's owners). Those
    without a second factor are held at /account/two-step from their next request on, the actor included: being
    sent to set one up is what keeps an owner from locking themselves out."""
    changed = account.two_step_required != required
    if changed:
        account.two_step_required = required
        audit.record(
            EventTag.TWO_STEP_POLICY_CHANGE,
            user_id=actor.id,
            account_id=account.id,
            session_id=session_id,
            ip=ip,
            old={"two_step_required": not required},
            new={"two_step_required": required},
        )
    return Switched(changed, must_set_up(actor))


def must_set_up(user: User) -> bool:
    """The guard's question: the user's account requires a second step and they have none yet. Recovery codes
    alone do not count (app.accounts.services.has_second_factor)."""
    return user.account.two_step_required and not has_second_factor(user)
