"""Forgotten password (DESIGN §10, issue 12 item 2): a single-use, 30-minute link by mail, bound to the password it
replaces; setting the new password there signs the user out everywhere and revokes every grant."""

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, url_for

from app.accounts import services as accounts
from app.accounts.models import User
from app.accounts.reset_models import PasswordReset
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.mail import services as mail
from app.oauth import tokens
from app.security import passwords, ratelimit
from app.sessions import services as sessions
from app.sessions.models import UserSession

log = logging.getLogger(__name__)

LINK_LIFETIME = timedelta(minutes=30)
TOKEN_PREFIX = "ghp_"
MAX_TOKEN_LENGTH = 128
MAILS_PER_EMAIL = "3 per hour"
REQUESTS_PER_ADDRESS = "10 per minute"
REASON_PASSWORD_RESET = "password_reset"
FINGERPRINT_SALT = b"gatehouse.password-reset-fingerprint.v1"


class ResetLinkInvalid(Exception):
    """Malformed, unknown, used, expired, or its password has changed since: one answer for all (start again)."""


@dataclass(frozen=True)
class ResetLink:
    reset: PasswordReset
    user: User
    second_step: bool  # the account has a second factor: the reset asks for it too


def request_reset(email: str, ip: str, now: datetime) -> None:
    """Mail a reset link to this address if it is a user's who can sign in, within the limits (10 requests per
    client address a minute, 3 mails per e-mail an hour). Whatever happens the caller shows the same answer, so
    nothing here says whether the address exists; over a limit nothing is sent."""
    if ratelimit.charge(((REQUESTS_PER_ADDRESS, "reset-ip", ratelimit.address_key(ip)),)) is not None:
        log.info("password reset request refused by the per-address limit")
        return
    # Charged for unknown addresses too, so the limit itself says nothing about which addresses exist.
    if not within_mail_limit(email):
        log.info("password reset request refused by the per-e-mail limit")
        return
    user = User.by_email(email)
    if user is None or user.disabled_at is not None:
        return
    send_link(user, now)


def within_mail_limit(email: str) -> bool:
    """Charge one reset mail to the address's limit (3 an hour, whoever asks); False when it is spent."""
    return ratelimit.charge(((MAILS_PER_EMAIL, "reset-email", ratelimit.account_key(email)),)) is None


def send_link(user: User, now: datetime) -> None:
    """Mail the user a new single-use, 30-minute reset link (in the caller's transaction). The caller decides who
    may have one and charges the per-e-mail limit (request_reset; a "This wasn't me" report)."""
    token = tokens.new_token(TOKEN_PREFIX)
    db.session.add(
        PasswordReset(
            user_id=user.id,
            token_hash=tokens.digest(token),
            password_fingerprint=_fingerprint(user.password_hash),
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
    )
    db.session.flush()
    # On ISSUER's origin, never the request's Host header: a forged Host must not put the link on another site.
    issuer = urlsplit(current_app.config["ISSUER"])
    link = f"{issuer.scheme}://{issuer.netloc}{url_for('password_reset.reset', token=token)}"
    mail.send(user.email, "password_reset", name=user.name, link=link, minutes=_minutes(LINK_LIFETIME))


def check_link(token: str, now: datetime) -> ResetLink:
    """The link's reset if it still stands, else ResetLinkInvalid."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise ResetLinkInvalid()
    reset = PasswordReset.by_token_hash(tokens.digest(token))
    if reset is None or reset.used_at is not None or now >= reset.expires_at:
        raise ResetLinkInvalid()
    user = db.session.get(User, reset.user_id)
    if user is None or user.disabled_at is not None:
        raise ResetLinkInvalid()
    if not hmac.compare_digest(reset.password_fingerprint, _fingerprint(user.password_hash)):
        raise ResetLinkInvalid()  # the password changed since the link was sent
    return ResetLink(reset, user, accounts.has_second_factor(user))


def reset_password(token: str, new: str, code: str | None, now: datetime, ip: str) -> int:
    """Set the new password through a standing link, in this order: the link, the NIST rules for the new password
    (a weak one is a typo to fix, and spends no recovery code), then the second step when the account has one. Then,
    in this transaction: the link is spent and every session of the user ends, the one path every sign-out takes, which
    revokes the grants each session approved with their refresh tokens (app.oauth.grants.on_sessions_ended; a grant
    whose session had already ended was revoked then). Returns the number of sessions ended.
    Raises ResetLinkInvalid, AccountError, SecondStepMissing or the factors' errors (audited)."""
    link = check_link(token, now)
    user = link.user
    accounts.check_new_password(new, user.email, user.name, user)
    if link.second_step:
        if not code:
            raise accounts.SecondStepMissing()
        accounts.second_step(user, code, now, ip)
    if not link.reset.use(now):
        raise ResetLinkInvalid()  # spent by a concurrent request meanwhile
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = now
    ended = sessions.end_sessions(UserSession.user_id == user.id, reason=REASON_PASSWORD_RESET, now=now)
    audit.record(EventTag.PASSWORD_RESET, user_id=user.id, account_id=user.account_id, ip=ip, signed_out=len(ended))
    return len(ended)


def _fingerprint(password_hash: str) -> str:
    """HMAC of the stored password hash under a key derived from SECRET_KEY: the table never holds the hash."""
    key = hmac.digest(current_app.config["SECRET_KEY"].encode(), FINGERPRINT_SALT, "sha256")
    return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()


def _minutes(lifetime: timedelta) -> int:
    return int(lifetime.total_seconds() // 60)
