"""E-mail change (DESIGN §10, issue 12 item 3): asked on /account, made by a single-use link mailed to the new address,
told to the old address once made, both steps recorded.

Nothing the requester sees says whether the new address belongs to someone else: a taken address gets the same
answer, the same pending change on /account and the same end of the requester's older link; only its holder hears of
it, in a mail without a link."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, url_for
from sqlalchemy.exc import IntegrityError

from app.accounts import services as accounts
from app.accounts.email_change_models import EmailChange
from app.accounts.errors import AccountError
from app.accounts.models import User, normalize_email
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.mail import services as mail
from app.oauth import tokens
from app.security import ratelimit

log = logging.getLogger(__name__)

LINK_LIFETIME = timedelta(hours=24)
TOKEN_PREFIX = "ghe_"
MAX_TOKEN_LENGTH = 128
REQUESTS_PER_USER = "3 per hour"
NOT_AN_ADDRESS = "Enter a whole e-mail address, like name@example.com."
SAME_ADDRESS = "That is already your e-mail address."


class LinkInvalid(Exception):
    """Malformed, unknown, used, expired, replaced by a newer request, or the address changed since: one answer."""


class AddressTaken(Exception):
    """The new address became another user's after the link was sent: nothing changed."""


class TooManyRequests(Exception):
    def __init__(self, retry_after_seconds: int):
        super().__init__(f"too many e-mail change requests; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class ChangeLink:
    change: EmailChange
    user: User

    @property
    def masked_old_email(self) -> str:
        """What the confirmation page says of the address it replaces: whoever holds the link sees no more."""
        return mask(self.change.old_email)


def request_change(user: User, new_email: str, now: datetime, ip: str, session_id: int) -> str:
    """Mail a link to the new address that makes it the user's, within 3 requests per user an hour; the user's older
    links stop working (only the newest request stands). Returns the normalized address. Raises AccountError for an
    unusable address or the current one, TooManyRequests over the limit (nothing stored or sent)."""
    new_email = normalize_email(new_email or "")
    try:
        accounts.check_email(new_email)
    except AccountError:
        raise AccountError(NOT_AN_ADDRESS) from None
    if new_email == user.email:
        raise AccountError(SAME_ADDRESS)
    wait = ratelimit.charge(((REQUESTS_PER_USER, "email-change", f"user:{user.id}"),))
    if wait is not None:
        raise TooManyRequests(wait)
    token = tokens.new_token(TOKEN_PREFIX)
    # Stored for a taken address too (its token never sent): the pending change and the older link's end are the same.
    change = EmailChange(user_id=user.id, old_email=user.email, new_email=new_email, token_hash=tokens.digest(token),
                         created_at=now, expires_at=now + LINK_LIFETIME)  # fmt: skip
    db.session.add(change)
    db.session.flush()
    if User.by_email(new_email) is None:
        mail.send(new_email, "email_change_confirm", new_email=new_email, link=_link(token), hours=_hours())
    else:
        log.info("e-mail change to an address that is taken: its holder is told, no link is sent")
        mail.send(new_email, "email_change_taken", address=new_email)
    audit.record(EventTag.EMAIL_CHANGE_REQUEST, user_id=user.id, account_id=user.account_id, session_id=session_id,
                 ip=ip)  # fmt: skip
    return new_email


def pending(user: User, now: datetime) -> EmailChange | None:
    """The change waiting for the new address to confirm it, as /account shows it."""
    change = EmailChange.newest_for(user.id)
    if change is None or not _stands(change, user, now):
        return None
    return change


def check_link(token: str, now: datetime) -> ChangeLink:
    """The link's change if it still stands, else LinkInvalid."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise LinkInvalid()
    change = EmailChange.by_token_hash(tokens.digest(token))
    if change is None:
        raise LinkInvalid()
    user = db.session.get(User, change.user_id)
    if user is None or user.disabled_at is not None or not _stands(change, user, now):
        raise LinkInvalid()
    newest = EmailChange.newest_for(user.id)
    if newest is None or newest.id != change.id:
        raise LinkInvalid()  # a newer request replaced it
    return ChangeLink(change, user)


def confirm(token: str, now: datetime, ip: str) -> ChangeLink:
    """Make the change through a standing link: the link is spent (of two concurrent confirmations one wins), the
    address set, the change recorded and the old address told, all in this transaction. The user's sessions go on.
    Raises LinkInvalid, or AddressTaken when the address became another user's meanwhile (the caller rolls back:
    nothing is half done)."""
    link = check_link(token, now)
    change, user = link.change, link.user
    if not change.use(now):
        raise LinkInvalid()  # spent by a concurrent confirmation meanwhile
    if User.by_email(change.new_email) is not None:
        raise AddressTaken()
    user.email = change.new_email
    try:
        db.session.flush()
    except IntegrityError as exc:  # a user created with it since the check above (the unique index decides)
        raise AddressTaken() from exc
    audit.record(EventTag.EMAIL_CHANGE, user_id=user.id, account_id=user.account_id, ip=ip)
    mail.send(change.old_email, "email_changed_notice", name=user.name, old_email=change.old_email,
              new_email=change.new_email, changed_at=now)  # fmt: skip
    return link


def mask(email: str) -> str:
    """ "a***@example.com": enough for its owner to recognise, too little to learn it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _stands(change: EmailChange, user: User, now: datetime) -> bool:
    # The address it replaces must still be the user's: a change made meanwhile (another link, an operator) ends it.
    return change.used_at is None and now < change.expires_at and user.email == change.old_email


def _link(token: str) -> str:
    # On ISSUER's origin, never the request's Host header: a forged Host must not put the link on another site.
    issuer = urlsplit(current_app.config["ISSUER"])
    return f"{issuer.scheme}://{issuer.netloc}{url_for('email_change.confirm', token=token)}"


def _hours() -> int:
    return int(LINK_LIFETIME.total_seconds() // 3600)
