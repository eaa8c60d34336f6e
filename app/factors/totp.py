"""The authenticator app (TOTP, RFC 6238; DESIGN §9): enrolment shown as a QR code and as text, confirmed with one
current code; at sign-in a 6-digit code, one time step of skew either way, each code accepted once, and wrong codes
rate-limited per user (recovery codes share that limit). Never log or audit a secret or a code."""

import hmac
import logging
import re
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from flask import current_app
from markupsafe import Markup

from app.accounts.models import User
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.factors import secrets
from app.factors.errors import (
    AlreadyEnrolled,
    CodeReused,
    EnrolmentExpired,
    NotEnrolled,
    TooManyAttempts,
    WrongCode,
)
from app.factors.models import TotpAuthenticator
from app.security import ratelimit

log = logging.getLogger(__name__)

FACTOR = "totp"  # the audit events' factor detail
# A set-up's key is accepted this long: one shown long ago (a screen left open, a screenshot) cannot be confirmed.
PENDING_LIFETIME = timedelta(minutes=30)
ISSUER = "Gatehouse"  # the name authenticator apps list the account under (Key Uri Format: issuer)
CODE_DIGITS = 6
SKEW_STEPS = 1  # RFC 6238 §5.2: one step back or ahead, for clock drift and typing time
SECRET_GROUP_LENGTH = 4
QR_TITLE = "QR code to scan with your authenticator app"
QR_SCALE = 4
_CODE_SHAPE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


@dataclass(frozen=True)
class Enrolment:
    """What the set-up page shows, all of it derived from the pending secret."""

    secret_text: str  # base32 in groups of four, for typing into the app by hand
    provisioning_uri: str  # otpauth://totp/Gatehouse:<e-mail>?secret=…&issuer=Gatehouse
    qr_svg: Markup  # inline SVG (role img, a title), no script and no external reference: safe to embed


def begin_enrolment(user: User, now: datetime) -> Enrolment:
    """A new pending secret, replacing any pending one; refused (AlreadyEnrolled) when one is already confirmed."""
    authenticator = TotpAuthenticator.for_user(user.id)
    if authenticator is not None and authenticator.is_confirmed:
        raise AlreadyEnrolled()
    if authenticator is None:
        authenticator = TotpAuthenticator(user_id=user.id)
        db.session.add(authenticator)
    secret = pyotp.random_base32()  # 160 bits, RFC 4226 §4 R6's recommended length
    authenticator.secret_encrypted = secrets.seal(secret)
    authenticator.created_at = now
    db.session.flush()
    return _enrolment(secret, user.email)


def pending_enrolment(user: User, now: datetime) -> Enrolment | None:
    """The pending enrolment again (the page re-shown after a wrong code), or None when there is none or it has
    expired (PENDING_LIFETIME)."""
    authenticator = TotpAuthenticator.for_user(user.id)
    if authenticator is None or authenticator.is_confirmed or now > authenticator.created_at + PENDING_LIFETIME:
        return None
    return _enrolment(secrets.open_sealed(authenticator.secret_encrypted).value, user.email)


def confirm_enrolment(
    user: User, code: str, now: datetime, *, ip: str | None = None, session_id: int | None = None
) -> None:
    """Turn the pending authenticator on with one current code (which is then used: it cannot sign in again).
    Raises NotEnrolled (EnrolmentExpired past PENDING_LIFETIME), AlreadyEnrolled, WrongCode, CodeReused,
    TooManyAttempts."""
    authenticator = TotpAuthenticator.for_user(user.id)
    if authenticator is None:
        raise NotEnrolled()
    if authenticator.is_confirmed:
        raise AlreadyEnrolled()
    if now > authenticator.created_at + PENDING_LIFETIME:
        raise EnrolmentExpired()
    _accept(user, authenticator, code, now, ip, session_id, step="enrolment")
    authenticator.confirmed_at = now
    _record(EventTag.FACTOR_ADD, user, ip, session_id)


def verify(user: User, code: str, now: datetime, *, ip: str | None = None, session_id: int | None = None) -> None:
    """The second step of a sign-in (or a fresh re-authentication). Returns when the code is right, current and
    unused. Raises NotEnrolled, WrongCode, CodeReused, TooManyAttempts."""
    authenticator = TotpAuthenticator.confirmed_for_user(user.id)
    if authenticator is None:
        raise NotEnrolled()
    _accept(user, authenticator, code, now, ip, session_id, step="sign_in")
    _record(EventTag.FACTOR_USE, user, ip, session_id)


def remove(user: User, now: datetime, *, ip: str | None = None, session_id: int | None = None) -> None:
    """Remove the authenticator, confirmed or pending (a pending one was never a factor: no event). The caller has
    required a fresh sign-in (DESIGN §9). Raises NotEnrolled."""
    authenticator = TotpAuthenticator.for_user(user.id)
    if authenticator is None:
        raise NotEnrolled()
    was_confirmed = authenticator.is_confirmed
    db.session.delete(authenticator)
    db.session.flush()
    if was_confirmed:
        _record(EventTag.FACTOR_REMOVE, user, ip, session_id)


def is_enabled(user: User) -> bool:
    """A confirmed authenticator app: a second factor for sign-in."""
    return TotpAuthenticator.confirmed_for_user(user.id) is not None


def enabled_among(user_ids: Iterable[int]) -> set[int]:
    """Which of these users have a confirmed authenticator app (one query, for lists of people)."""
    return TotpAuthenticator.confirmed_user_ids(list(user_ids))


def code_guess_limits(user_id: int) -> tuple:
    return ((current_app.config["SECOND_FACTOR_RATE_LIMIT"], "second-factor-user", f"user:{user_id}"),)


@contextmanager
def code_guess(user_id: int):
    """Every code checked (authenticator app or recovery code) is one guess, charged before it is checked, as
    password guesses are (app.accounts.services.password_guess): concurrent guesses cannot all slip under the limit.
    An accepted code gives its charge back, so only wrong (or replayed) codes count. Raises TooManyAttempts."""
    limits = code_guess_limits(user_id)
    wait = ratelimit.charge(limits)
    if wait is not None:
        log.info("second-factor code refused by its rate limit; retry in %d s", wait)
        raise TooManyAttempts(wait)
    yield  # WrongCode or CodeReused propagates from here, and the guess stays charged
    ratelimit.give_back(limits)


def normalize_code(code: str) -> str:
    """Spaces tolerated: apps show codes as "123 456"."""
    return "".join((code or "").split())


def is_code_shaped(code: str) -> bool:
    """Six digits once spaces are gone: an authenticator-app code, never a recovery code (12 symbols), so one
    field on the second step can take either."""
    return _CODE_SHAPE.fullmatch(normalize_code(code)) is not None


def _accept(
    user: User,
    authenticator: TotpAuthenticator,
    code: str,
    now: datetime,
    ip: str | None,
    session_id: int | None,
    step: str,
) -> None:
    with code_guess(user.id):
        opened = secrets.open_sealed(authenticator.secret_encrypted)
        matched = _matching_step(opened.value, normalize_code(code), now) if is_code_shaped(code) else None
        if matched is None or not authenticator.claim_step(matched, now):
            reason = "wrong" if matched is None else "reused"
            _record(EventTag.FACTOR_FAILURE, user, ip, session_id, reason=reason, step=step)
            raise WrongCode() if matched is None else CodeReused()
    if opened.stale:
        authenticator.secret_encrypted = secrets.seal(opened.value)  # SECRET_KEY rotated: re-seal under the new key


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (of the current one and its neighbours) whose code this is, latest first, or None."""
    totp = pyotp.TOTP(secret, digits=CODE_DIGITS)
    current = totp.timecode(now)
    for step in range(current + SKEW_STEPS, current - SKEW_STEPS - 1, -1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _record(tag: EventTag, user: User, ip: str | None, session_id: int | None, **details) -> None:
    audit.record(
        tag, user_id=user.id, account_id=user.account_id, session_id=session_id, ip=ip, factor=FACTOR, **details
    )


def _enrolment(secret: str, email: str) -> Enrolment:
    uri = pyotp.TOTP(secret, digits=CODE_DIGITS).provisioning_uri(name=email, issuer_name=ISSUER)
    grouped = " ".join(secret[i : i + SECRET_GROUP_LENGTH] for i in range(0, len(secret), SECRET_GROUP_LENGTH))
    return Enrolment(secret_text=grouped, provisioning_uri=uri, qr_svg=_qr_svg(uri))


def _qr_svg(uri: str) -> Markup:
    # segno writes only <svg>, <title> and one <path>; the title is our constant, so nothing user-typed is inside.
    svg = segno.make(uri, error="m").svg_inline(scale=QR_SCALE, title=QR_TITLE)
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{QR_TITLE}" ', 1))  # noqa: S704
