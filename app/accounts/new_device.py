"""New-device alert (DESIGN §10, issue 12 item 4): a sign-in from a device (the portal's device cookie) the user never
signed in from mails them what it was, with a "This wasn't me" link (app/accounts/not_me.py acts on it).

The link is its own authority, so it must work from any browser without a session: it is a signature (SECRET_KEY, its
own salt) over the reported session's row id, the user's id and the time it was made, valid 7 days by the app's
clock. It names the session by its row id, not its public id: the public id changes on every re-authentication, and
an intruder must not be able to kill the link by confirming the password they stole. No table holds the links.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, url_for
from itsdangerous import BadData, URLSafeSerializer

from app.accounts.models import User
from app.extensions import db
from app.mail import services as mail
from app.mail.errors import InvalidRecipient
from app.sessions.models import KnownDevice, UserSession

log = logging.getLogger(__name__)

REASON_NOT_ME = "not_me"  # the sessions a "This wasn't me" report ended
# Every link token we issue starts "gh" + a letter + "_": access logs cut such a token to its prefix
# (app/security/log_paths.py), and a leaked one is recognisable.
TOKEN_PREFIX = "ghn_"
LINK_LIFETIME = timedelta(days=7)
LINK_SALT = "gatehouse.not-me.v1"
# What we issue is about 80 characters; anything much longer is not ours and is refused before any decoding.
MAX_TOKEN_LENGTH = 200
# A link made later than now by more than this is not one we made (or the clock went backwards).
MAX_CLOCK_SKEW_SECONDS = 5
MAIL_TEMPLATE = "new_device"


class NotMeLinkInvalid(Exception):
    """Malformed, tampered, signed with another key or salt, expired, or naming a session or user that is gone."""


@dataclass(frozen=True)
class ReportedSignIn:
    """What a standing link names: the session it reports and its user."""

    session: UserSession
    user: User


def on_sign_in(user: User, session: UserSession, now: datetime) -> None:
    """Called by every sign-in once its session is open, before the user's last_login_at moves. The device is
    remembered either way; the alert goes only when the device was new to the user and this is not the account's
    very first sign-in (last_login_at unset: someone who has just been given their password or accepted an invitation,
    whose every device is new). last_login_at, not "no known device yet", decides that: forgetting a reported device
    must never make the next sign-in look like a first one."""
    first_sign_in = user.last_login_at is None
    if not KnownDevice.remember(user.id, session.device_id, now) or first_sign_in:
        return
    try:
        mail.send(user.email, MAIL_TEMPLATE, name=user.name, device=session.device_name, location=session.location,
                  ip=session.ip, at=session.created_at, link=not_me_link(session, now))  # fmt: skip
    except InvalidRecipient:
        # An address no mail can reach must not stop the sign-in; the owner sees such people on the people page.
        log.warning("new-device alert not queued: the user's address is not one mail can be sent to")


def not_me_link(session: UserSession, now: datetime) -> str:
    """The "This wasn't me" link for a session, on ISSUER's origin (never the request's Host header)."""
    issuer = urlsplit(current_app.config["ISSUER"])
    return f"{issuer.scheme}://{issuer.netloc}{url_for('not_me.confirm', token=link_token(session, now))}"


def link_token(session: UserSession, now: datetime) -> str:
    return TOKEN_PREFIX + _serializer().dumps([session.id, session.user_id, int(now.timestamp())])


def read_link(token: str, now: datetime) -> ReportedSignIn:
    """The session and user a link names while it stands (7 days), else NotMeLinkInvalid. The age is judged by the
    app's clock from the time inside the signed payload (itsdangerous' timed serializer reads the system clock)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise NotMeLinkInvalid()
    try:
        payload = _serializer().loads(token.removeprefix(TOKEN_PREFIX))
    except (BadData, ValueError, UnicodeError) as exc:
        raise NotMeLinkInvalid() from exc
    session_id, user_id, made_at = _fields(payload)
    if now > made_at + LINK_LIFETIME or made_at.timestamp() > now.timestamp() + MAX_CLOCK_SKEW_SECONDS:
        raise NotMeLinkInvalid()
    session = db.session.get(UserSession, session_id)
    if session is None or session.user_id != user_id:
        raise NotMeLinkInvalid()
    user = session.user
    if user.disabled_at is not None:
        raise NotMeLinkInvalid()  # every session already ended with the disabling, and no reset link would work
    return ReportedSignIn(session, user)


def _fields(payload: object) -> tuple[int, int, datetime]:
    if not (isinstance(payload, list) and len(payload) == 3):
        raise NotMeLinkInvalid()
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**42 for v in payload):
        raise NotMeLinkInvalid()
    session_id, user_id, made_at = payload
    return session_id, user_id, datetime.fromtimestamp(made_at, UTC)


def _serializer() -> URLSafeSerializer:
    """Signs with SECRET_KEY; verifies with it and its fallbacks (itsdangerous: the last key of the list signs)."""
    config = current_app.config
    return URLSafeSerializer([*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"]], salt=LINK_SALT)
