"""Invitations (DESIGN §10, issue 12 item 6): an owner invites an address with a role; the mail's one link works
once, for 7 days, to choose a name and a password, and signs the new person in. Only a digest of the link is kept;
a resend replaces it (the old link dies) and a cancel ends it."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, url_for

from app.accounts import services as accounts
from app.accounts.errors import AccountError
from app.accounts.models import ROLE_OWNER, ROLES, Account, User, normalize_email
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.mail import services as mail
from app.oauth import tokens
from app.people.models import Invitation
from app.security import ratelimit
from app.sessions.devices import RequestMeta

LINK_LIFETIME = timedelta(days=7)
TOKEN_PREFIX = "ghi_"
MAX_TOKEN_LENGTH = 128
# Every invitation mail (a first one or a resend) counts: an owner's account cannot be used to flood mailboxes.
MAILS_PER_ACCOUNT = "20 per hour"
ROLE_WORDS = {"owner": "an owner", "member": "a member"}
NOT_AN_ADDRESS = "Enter one e-mail address, like name@example.com."


class InvitationLinkInvalid(Exception):
    """Malformed, unknown, accepted, cancelled, replaced by a resend or expired: one answer for all."""


class UnknownInvitation(LookupError):
    """No invitation with that id in the owner's account (another account's reads the same)."""


class AddressTaken(Exception):
    """Someone signs in with the invited address already (created, or invited elsewhere and accepted, meanwhile)."""

    def __init__(self, email: str):
        super().__init__(email)
        self.email = email


class TooManyInvitations(Exception):
    def __init__(self, retry_after_seconds: int):
        super().__init__(f"too many invitations; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class AcceptanceRefused(Exception):
    """The name or the password cannot be used: said next to that field, and the link still works."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class InvitationLink:
    invitation: Invitation
    account: Account
    inviter: User | None  # None when the owner who sent it has been removed since

    @property
    def role_words(self) -> str:
        return ROLE_WORDS[self.invitation.role]


def invite(owner: User, email: str, role: str, now: datetime, ip: str | None) -> Invitation:
    """Invite an address to the owner's account (the caller has checked that `owner` is one of its owners).
    Raises AccountError (an unusable address or role, someone who signs in with it already, an invitation to it
    still pending) or TooManyInvitations."""
    email = _usable_address(email)
    if role not in ROLES:
        raise AccountError("Choose a role: member or owner.")
    Account.lock(owner.account_id)  # two owners inviting the same address at once: one invitation
    _refuse_taken(email, owner.account)
    if Invitation.pending_for(owner.account_id, email) is not None:
        raise AccountError(f"An invitation to {email} is already pending: use Resend next to it below.")
    _charge(owner.account_id)
    invitation = Invitation(account_id=owner.account_id, email=email, role=role, invited_by_id=owner.id,
                            token_hash="", created_at=now, expires_at=now)  # fmt: skip
    _send(invitation, owner, now)
    audit.record(EventTag.INVITATION_SEND, user_id=owner.id, account_id=owner.account_id, ip=ip, role=role,
                 invitation=invitation.id)  # fmt: skip
    return invitation


def resend(owner: User, invitation_id: int, now: datetime, ip: str | None) -> Invitation:
    """A new link (the old one dies) valid 7 days from now, in a new mail. Raises UnknownInvitation, AccountError
    (accepted or cancelled meanwhile, or the address is someone's now) or TooManyInvitations."""
    invitation = pending_of(owner, invitation_id)
    _refuse_taken(invitation.email, owner.account)
    _charge(owner.account_id)
    _send(invitation, owner, now)
    audit.record(EventTag.INVITATION_RESEND, user_id=owner.id, account_id=owner.account_id, ip=ip,
                 invitation=invitation.id)  # fmt: skip
    return invitation


def cancel(owner: User, invitation_id: int, now: datetime, ip: str | None) -> Invitation:
    """The link dies and the invitation leaves the list. Raises UnknownInvitation or AccountError."""
    invitation = pending_of(owner, invitation_id)
    if not invitation.cancel(now):
        raise AccountError(f"The invitation to {invitation.email} was accepted or cancelled meanwhile.")
    audit.record(EventTag.INVITATION_CANCEL, user_id=owner.id, account_id=owner.account_id, ip=ip,
                 invitation=invitation.id)  # fmt: skip
    return invitation


def pending_of(owner: User, invitation_id: int) -> Invitation:
    invitation = Invitation.of_account(owner.account_id, invitation_id)
    if invitation is None:
        raise UnknownInvitation(invitation_id)
    if invitation.accepted_at is not None:
        raise AccountError(f"{invitation.email} has accepted the invitation already.")
    if invitation.cancelled_at is not None:
        raise AccountError(f"The invitation to {invitation.email} was cancelled.")
    return invitation


def check_link(token: str, now: datetime) -> InvitationLink:
    """The link's invitation if it still stands, else InvitationLinkInvalid; AddressTaken when someone signs in
    with its address already."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvitationLinkInvalid()
    invitation = Invitation.by_token_hash(tokens.digest(token))
    if invitation is None or invitation.accepted_at or invitation.cancelled_at or now >= invitation.expires_at:
        raise InvitationLinkInvalid()
    if User.by_email(invitation.email) is not None:
        raise AddressTaken(invitation.email)
    inviter = db.session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
    return InvitationLink(invitation, db.session.get_one(Account, invitation.account_id), inviter)


def accept(
    token: str, name: str, password: str, meta: RequestMeta, now: datetime, replaces: int | None = None
) -> accounts.SignedIn:
    """Join the account through a standing link, in one transaction: the link is spent (of two concurrent
    acceptances one wins), the user is created with the invitation's address and role and the password's NIST rules,
    and signed in. Raises InvitationLinkInvalid, AddressTaken or AcceptanceRefused; on any of them the caller rolls
    back, so a refused password leaves the link working."""
    link = check_link(token, now)
    invitation = link.invitation
    name = (name or "").strip()
    if not name or len(name) > accounts.MAX_NAME_LENGTH:
        raise AcceptanceRefused("name", f"Enter your name (at most {accounts.MAX_NAME_LENGTH} characters).")
    if not invitation.spend(tokens.digest(token), now):
        raise InvitationLinkInvalid()  # accepted, cancelled or replaced by a concurrent request a moment ago
    try:
        user = accounts.create_user(link.account, invitation.email, name, invitation.role, password, now)
    except AccountError as refused:
        if User.by_email(invitation.email) is not None:  # created concurrently (create_user rolled back)
            raise AddressTaken(invitation.email) from refused
        raise AcceptanceRefused("new_password", str(refused)) from refused
    invitation.user_id = user.id
    audit.record(EventTag.INVITATION_ACCEPT, user_id=user.id, account_id=user.account_id, ip=meta.ip,
                 invitation=invitation.id, role=user.role)  # fmt: skip
    return accounts.sign_in_new_user(user, meta, now, replaces)


def _usable_address(email: str) -> str:
    """The rule every sign-in address follows, and one the mail service will send to."""
    email = normalize_email(email or "")
    try:
        accounts.check_email(email)
    except AccountError as refused:
        raise AccountError(NOT_AN_ADDRESS) from refused
    if len(email) > mail.MAX_ADDRESS_LENGTH or not mail.ADDRESS.fullmatch(email):
        raise AccountError(NOT_AN_ADDRESS)
    return email


def _refuse_taken(email: str, account: Account) -> None:
    user = User.by_email(email)
    if user is None:
        return
    if user.account_id == account.id:
        raise AccountError(f"{email} is already in {account.name}.")
    # One address, one sign-in: it cannot join a second account.
    raise AccountError(f"{email} already signs in to Gatehouse with another account, so it cannot be invited.")


def _charge(account_id: int) -> None:
    wait = ratelimit.charge(((MAILS_PER_ACCOUNT, "invitation-account", f"account:{account_id}"),))
    if wait is not None:
        raise TooManyInvitations(wait)


def _send(invitation: Invitation, owner: User, now: datetime) -> None:
    """A new token and 7 days from now, and the mail that carries them (the caller's transaction sends it)."""
    token = tokens.new_token(TOKEN_PREFIX)
    invitation.token_hash = tokens.digest(token)
    invitation.expires_at = now + LINK_LIFETIME
    db.session.add(invitation)
    db.session.flush()
    # On ISSUER's origin, never the request's Host header: a forged Host must not put the link on another site.
    issuer = urlsplit(current_app.config["ISSUER"])
    link = f"{issuer.scheme}://{issuer.netloc}{url_for('people.accept', token=token)}"
    message = mail.send(invitation.email, "invitation", account=owner.account.name, inviter=owner.name,
                        role=ROLE_WORDS[invitation.role], owner=invitation.role == ROLE_OWNER, link=link,
                        expires_at=invitation.expires_at, days=LINK_LIFETIME.days)  # fmt: skip
    invitation.mail_id = message.id
