"""The account's people, as its owners see and manage them at /account/people (DESIGN §10, issue 12 item 6): who is
in it with their devices, last activity, second steps and refused mail, in one query; roles, with never less than one
owner who can sign in; signing a person out everywhere; disabling, enabling and removing through the same account
services as the command line."""

from dataclasses import dataclass
from datetime import datetime

from app.accounts import services as accounts
from app.accounts.errors import AccountError
from app.accounts.models import ROLES, Account, User
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.factors.models import RecoveryCode, TotpAuthenticator
from app.factors.recovery import CODE_COUNT
from app.mail.models import MailMessage
from app.passkeys.models import PasskeyCredential
from app.people.models import Invitation
from app.security.identifiers import is_row_id
from app.sessions import revocation
from app.sessions import services as sessions
from app.sessions.models import UserSession

# The reason an owner's "sign out everyone" gives too: the person's next page says an owner signed them out.
REASON_SIGNED_OUT_BY_OWNER = revocation.REASON_OWNER
PERMANENT_REFUSAL = 500  # RFC 5321 §4.2.1: a 5yz reply is a permanent failure


class UnknownPerson(LookupError):
    """No such person in the owner's account (someone of another account reads the same)."""


@dataclass(frozen=True)
class Person:
    user: User
    devices: int  # live sessions
    last_active: datetime | None  # newest session activity, else the last sign-in
    authenticator_app: bool
    passkeys: int
    recovery_codes_left: int
    refused_mail: str | None  # the receiving server's answer when the newest mail to their address was refused

    @property
    def has_second_factor(self) -> bool:
        return self.authenticator_app or self.passkeys > 0


@dataclass(frozen=True)
class PendingInvitation:
    invitation: Invitation
    mail: MailMessage | None  # the newest mail sent for it (None once the outbox dropped it)

    def expired(self, now: datetime) -> bool:
        return now >= self.invitation.expires_at

    @property
    def delivery(self) -> str:
        """queued | retrying | delivered | refused | failed | unknown: what the page says of its mail."""
        mail = self.mail
        if mail is None:
            return "unknown"
        if mail.delivered_at is not None:
            return "delivered"
        if mail.failed_at is not None:
            return "refused" if (mail.last_status or 0) >= PERMANENT_REFUSAL else "failed"
        return "retrying" if mail.attempts else "queued"


@dataclass(frozen=True)
class Roster:
    people: list[Person]
    invitations: list[PendingInvitation]
    recovery_code_count: int = CODE_COUNT

    @property
    def owners_who_can_sign_in(self) -> int:
        return sum(1 for p in self.people if p.user.is_owner and p.user.disabled_at is None)


def roster(account: Account, now: datetime) -> Roster:
    """The account's people with what the page shows of each, in one query however many they are, and its pending
    invitations with their mail, in another."""
    rows = User.in_account_with(
        account.id,
        UserSession.live_count_of(User.id, now),
        UserSession.last_used_of(User.id),
        TotpAuthenticator.confirmed_exists(User.id),
        PasskeyCredential.count_of(User.id),
        RecoveryCode.unused_count_of(User.id),
        MailMessage.refusal_to(User.email),
    )
    people = [
        Person(user, devices, _newest(last_used, user.last_login_at), app, keys, codes, refused)
        for user, devices, last_used, app, keys, codes, refused in rows
    ]
    invitations = [PendingInvitation(row[0], row[1]) for row in Invitation.pending_with_mail(account.id)]
    return Roster(people, invitations)


def _newest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def person_of(owner: User, person_id: int) -> User:
    """One of the owner's account's people; anyone else reads as unknown (a 404, no IDOR)."""
    person = db.session.get(User, person_id) if is_row_id(person_id) else None
    if person is None or person.account_id != owner.account_id:
        raise UnknownPerson(person_id)
    return person


def change_role(owner: User, person: User, role: str, now: datetime, ip: str | None) -> bool:
    """Make the person an owner or a member; False when they already were. Refuses (AccountError) what would leave
    the account without an owner who can sign in, whatever was posted, counted under the account's lock so that two
    owners demoting each other at once cannot both pass."""
    if role not in ROLES:
        raise AccountError("Choose a role: member or owner.")
    person.lock_for_owner_change()
    if person.role == role:
        return False
    if person.is_owner and person.disabled_at is None and person.other_active_owners() == 0:
        raise AccountError(_last_owner(person, owner))
    person.role = role
    audit.record(EventTag.USER_ROLE_CHANGE, user_id=person.id, account_id=person.account_id, ip=ip, role=role,
                 by=owner.id)  # fmt: skip
    return True


def sign_out_everywhere(owner: User, person: User, now: datetime, ip: str | None) -> int:
    """End every session of the person, and with them the grants those sessions approved and their refresh tokens
    (app.oauth.grants.on_sessions_ended); their next request goes to the sign-in page. Returns the count."""
    _not_yourself(owner, person, "To sign yourself out, use Devices or Sign out.")
    ended = sessions.end_sessions(UserSession.user_id == person.id, reason=REASON_SIGNED_OUT_BY_OWNER, now=now)
    audit.record(EventTag.USER_SIGN_OUT_EVERYWHERE, user_id=person.id, account_id=person.account_id, ip=ip,
                 count=len(ended), by=owner.id)  # fmt: skip
    return len(ended)


def disable(owner: User, person: User, now: datetime, ip: str | None) -> int:
    """The command line's `users disable`: no more sign-ins, every session ends. Returns the sessions ended."""
    _not_yourself(owner, person, "You cannot disable yourself. Another owner can.")
    return _as_the_cli(accounts.disable_user, person, now, owner=owner, ip=ip)


def enable(owner: User, person: User, ip: str | None) -> None:
    accounts.enable_user(person, by=owner, ip=ip)


def remove(owner: User, person: User, now: datetime, ip: str | None) -> int:
    """The command line's `users delete`: disabled first (apps told), then removed. Returns the sessions ended."""
    _not_yourself(owner, person, "You cannot remove yourself. Another owner can.")
    return _as_the_cli(accounts.delete_user, person, now, owner=owner, ip=ip)


def _as_the_cli(action, person: User, now: datetime, *, owner: User, ip: str | None) -> int:
    try:
        return action(person, now, by=owner, ip=ip)
    except AccountError as refused:  # the last owner who can sign in (counted under the account's lock)
        raise AccountError(_last_owner(person, owner)) from refused


def _not_yourself(owner: User, person: User, message: str) -> None:
    if person.id == owner.id:
        raise AccountError(message)


def _last_owner(person: User, owner: User) -> str:
    who = "You are" if person.id == owner.id else f"{person.name} is"
    return f"{who} the only owner of {person.account.name} who can sign in. Make someone else an owner first."
