"""Accounts, users and the one sign-in / sign-out boundary."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.accounts import new_device
from app.accounts.errors import AccountDisabled, AccountError, InvalidCredentials, TooManyAttempts
from app.accounts.models import ROLES, Account, User, normalize_email
from app.audit import services as audit
from app.audit.tags import EventTag
from app.extensions import db
from app.factors import recovery, totp
from app.factors.errors import FactorError
from app.mail import services as mail
from app.passkeys import services as passkeys
from app.passkeys.errors import PasskeyError
from app.passkeys.models import PasskeyCredential
from app.security import password_policy, passwords, ratelimit
from app.sessions import methods
from app.sessions import services as sessions
from app.sessions.devices import RequestMeta
from app.sessions.models import UserSession

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 120
MAX_EMAIL_LENGTH = 254
REASON_PASSWORD_CHANGED = "password_changed"


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: UserSession


class SecondStepMissing(FactorError):
    message = "Enter the code from your authenticator app, or a recovery code."


class PasskeyNeedsVerification(PasskeyError):
    """A passkey without user verification is one factor: it can be the second step, not a sign-in on its own."""

    reason = "user_not_verified"
    message = ("This passkey did not verify you (PIN or biometrics), so it cannot sign you in without your password. "
               "Sign in with your password instead.")  # fmt: skip


@dataclass(frozen=True)
class SecondStepNeeded:
    """The password was right and the account has a second factor: no session yet (DESIGN §9)."""

    user: User


@dataclass(frozen=True)
class PasswordChanged:
    signed_out: int  # other devices
    session: "sessions.ActiveSession"  # this one, under its new id (the caller sets the new cookie)


def create_account(name: str, now: datetime) -> Account:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"account name must be 1 to {MAX_NAME_LENGTH} characters")
    if Account.by_name(name):
        raise AccountError(f"an account named {name!r} already exists")
    account = Account(name=name, created_at=now)
    db.session.add(account)
    db.session.flush()
    audit.record(EventTag.ACCOUNT_CREATE, account_id=account.id, name=name)
    return account


def create_user(account: Account, email: str, name: str, role: str, password: str, now: datetime) -> User:
    email = normalize_email(email or "")
    _check_new_user(email, (name or "").strip(), role, password)
    user = User(
        account=account,
        email=email,
        name=name.strip(),
        role=role,
        password_hash=passwords.hash_password(password),
        created_at=now,
        password_changed_at=now,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise AccountError(f"a user with e-mail {email} already exists") from exc
    audit.record(EventTag.USER_CREATE, user_id=user.id, account_id=account.id, role=role)
    return user


def check_email(email: str) -> None:
    """The one rule for an address a user will sign in with (a new user, an invitation, an e-mail change): one plain
    address that mail can be sent to (app.mail.services refuses any other: a reset mail to it would fail)."""
    if len(email) > MAX_EMAIL_LENGTH or not mail.ADDRESS.fullmatch(email):
        raise AccountError(f"not a usable e-mail address: {email!r}")


def _check_new_user(email: str, name: str, role: str, password: str) -> None:
    check_email(email)
    if not name or len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if User.by_email(email):
        raise AccountError(f"a user with e-mail {email} already exists")
    check_new_password(password, email, name)


def has_second_factor(user: User | None) -> bool:
    """An authenticator app or a passkey: the password is then not the only factor (NIST: 8 characters, not 15)
    and sign-in asks for the second step. Recovery codes alone are not a factor, only a way back to one."""
    return user is not None and (totp.is_enabled(user) or bool(PasskeyCredential.of_user(user.id)))


def password_hint(user: User | None) -> str:
    return password_policy.hint(has_second_factor(user))


def check_new_password(password: str, email: str, name: str, user: User | None = None) -> None:
    """The one rule for every password set (password change, `flask users create`, demo data): NIST SP 800-63B-4,
    as app/security/password_policy.py says, with the user's e-mail and name as context-specific words."""
    problem = password_policy.problem(password, has_second_factor(user), email, name)
    if problem:
        raise AccountError(problem)


def authenticate(email: str, password: str) -> User:
    """Return the user whose credentials these are, or raise InvalidCredentials (same for both faults)."""
    user = User.by_email(email)
    if user is None:
        passwords.burn_verification(password)
        raise InvalidCredentials()
    verified = passwords.check_password(user.password_hash, password)
    if not verified:
        raise InvalidCredentials(user.id)
    if user.disabled_at is not None:
        raise AccountDisabled(user.id)
    if verified.needs_rehash:
        user.password_hash = passwords.hash_password(password)
    return user


def sign_in_guess_limits(email: str, ip: str) -> tuple:
    """An anonymous guess counts per address (IPv4, or IPv6 /64) and per account."""
    config = current_app.config
    return (
        (config["LOGIN_RATE_LIMIT_PER_IP"], "password-ip", ratelimit.address_key(ip)),
        (config["LOGIN_RATE_LIMIT_PER_ACCOUNT"], "password-account", ratelimit.account_key(email)),
    )


def session_guess_limits(user_id: int) -> tuple:
    """A signed-in guess (re-authentication, the current password) counts per signed-in user, at the account's
    rate: still limited (a stolen cookie cannot guess freely), but in a bucket that anonymous sign-in guesses for
    the same e-mail cannot fill, so nobody can lock a user out of their own session's password checks."""
    return ((current_app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT"], "password-session-user", f"session-user:{user_id}"),)


@contextmanager
def password_guess(limits: tuple):
    """Every password check (sign-in, re-authentication, password change) is one guess, charged to its limits
    before the password is checked: atomically, so concurrent guesses can never all pass a check made before any
    of them was counted (a failed guess counts while it is still in flight). A right password gives its charge
    back: only failed guesses count, and a successful sign-in costs nothing. Raises TooManyAttempts."""
    wait = ratelimit.charge(limits)
    if wait is not None:
        log.info("password guess refused by its rate limit (%s); retry in %d s", limits[0][1], wait)
        raise TooManyAttempts(wait)
    yield  # InvalidCredentials propagates from here, and the guess stays charged
    ratelimit.give_back(limits)


def sign_in(
    email: str, password: str, meta: RequestMeta, now: datetime, replaces: int | None = None
) -> SignedIn | SecondStepNeeded:
    """Check credentials (one rate-limited guess), record the outcome either way, and open a new device session, or
    say that the second step comes first (complete_second_step opens it).

    replaces: the session this browser already had; it ends, so a planted or old id never survives.
    """
    with password_guess(sign_in_guess_limits(email, meta.ip)):
        try:
            user = authenticate(email, password)
        except InvalidCredentials as failure:
            disabled: dict[str, Any] = {"step": "disabled"} if isinstance(failure, AccountDisabled) else {}
            audit.record(
                EventTag.SIGN_IN_FAILURE, user_id=failure.user_id, ip=meta.ip, device_id=meta.device_id, **disabled
            )
            raise
    if has_second_factor(user):
        return SecondStepNeeded(user)
    return _open_session(user, methods.PASSWORD, meta, now, replaces)


def sign_in_new_user(user: User, meta: RequestMeta, now: datetime, replaces: int | None = None) -> SignedIn:
    """A person who has just chosen their password (an accepted invitation) is signed in with it, through the same
    session opening and audit as /login: they proved the password by setting it, and have no second factor yet."""
    return _open_session(user, methods.PASSWORD, meta, now, replaces)


def complete_second_step(user_id: int, code: str, meta: RequestMeta, now: datetime, replaces: int | None = None):
    """The second step after a right password: an authenticator-app code (six digits) or a recovery code, in one
    field. Raises the factors' WrongCode / CodeReused / TooManyAttempts (each audited), or InvalidCredentials when
    the user was disabled or removed meanwhile."""
    user = db.session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise InvalidCredentials(user_id)
    method = second_step(user, code, now, meta.ip)
    return _open_session(user, methods.joined([methods.PASSWORD, method]), meta, now, replaces)


def sign_in_with_passkey(handle, credential_json, meta: RequestMeta, now: datetime, replaces: int | None = None):
    """Both steps in one (DESIGN §9): a discoverable passkey whose authenticator verified the user (PIN, biometric).
    Without user verification it is one factor, which is not enough to sign in without the password. Raises the
    passkey service's CeremonyRefused or PasskeyNeedsVerification (both audited)."""
    assertion = passkeys.authenticate(handle, credential_json, now)
    if not assertion.user_verified:
        audit.record(EventTag.FACTOR_FAILURE, user_id=assertion.user.id, ip=meta.ip, factor="passkey",
                     reason=PasskeyNeedsVerification.reason)  # fmt: skip
        raise PasskeyNeedsVerification()
    used = [_key_method(assertion.passkey), methods.USER_PRESENCE]
    return _open_session(assertion.user, methods.joined(used), meta, now, replaces)


def complete_second_step_with_passkey(
    user_id: int, handle, credential_json, meta: RequestMeta, now: datetime, replaces: int | None = None
) -> SignedIn:
    """A passkey of this user as the second step after the password (user verification not needed: the password is
    the other factor). Raises CeremonyRefused (also for another user's passkey), or InvalidCredentials when the user
    was disabled or removed meanwhile."""
    user = db.session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise InvalidCredentials(user_id)
    assertion = passkeys.authenticate(handle, credential_json, now, user=user)
    used = [methods.PASSWORD, _key_method(assertion.passkey)] + (
        [methods.USER_PRESENCE] if assertion.user_verified else []
    )
    return _open_session(user, methods.joined(used), meta, now, replaces)


def _key_method(passkey: PasskeyCredential) -> str:
    """RFC 8176: a passkey kept on its device is a hardware-secured key; one synced by the platform, a software one."""
    return methods.SOFTWARE_KEY if passkey.backed_up else methods.HARDWARE_KEY


def _open_session(user: User, auth_methods: str, meta: RequestMeta, now: datetime, replaces: int | None) -> SignedIn:
    if replaces is not None:
        sessions.end_session(replaces, sessions.REASON_REPLACED, now, tag=EventTag.SIGN_OUT, ip=meta.ip)
    session = sessions.start_session(user, meta, now, auth_methods)
    new_device.on_sign_in(user, session, now)  # before last_login_at moves: an account's first sign-in is not alerted
    user.last_login_at = now
    audit.record(
        EventTag.SIGN_IN_SUCCESS,
        user_id=user.id,
        account_id=user.account_id,
        session_id=session.id,
        ip=meta.ip,
        device=session.device_name,
        methods=auth_methods,
    )
    return SignedIn(user, session)


def sign_out(session_id: int, now: datetime, ip: str) -> None:
    sessions.end_session(session_id, sessions.REASON_SIGN_OUT, now, tag=EventTag.SIGN_OUT, ip=ip)


def confirm_password(
    user: User, password: str, state: "sessions.ActiveSession", now: datetime, ip: str, code: str | None = None
) -> "sessions.ActiveSession":
    """Re-authentication before a sensitive action: the password again, on this device (one rate-limited guess),
    and the second step too when the account has one (DESIGN §9: an authenticator-app or recovery code). Returns
    the session under its new id and methods (the caller sets the new cookie). Raises InvalidCredentials, or
    SecondStepMissing / the factors' errors for the code (each audited)."""
    with password_guess(session_guess_limits(user.id)):
        if not passwords.verify_password(user.password_hash, password):
            audit.record(EventTag.SIGN_IN_FAILURE, user_id=user.id, session_id=state.id, ip=ip, step="reauthenticate")
            raise InvalidCredentials(user.id)
    used = [methods.PASSWORD]
    if has_second_factor(user):
        if not code:
            raise SecondStepMissing()
        used.append(second_step(user, code, now, ip, state.id))
    renewed = sessions.mark_reauthenticated(state, now, methods.joined(used))
    audit.record(EventTag.REAUTHENTICATE, user_id=user.id, session_id=state.id, ip=ip, methods=renewed.auth_methods)
    return renewed


def confirm_with_passkey(
    user: User, handle, credential_json, state: "sessions.ActiveSession", now: datetime, ip: str
) -> "sessions.ActiveSession":
    """Re-authentication with one of the user's passkeys whose authenticator verified the user: both steps at once.
    Raises CeremonyRefused or PasskeyNeedsVerification (audited)."""
    assertion = passkeys.authenticate(handle, credential_json, now, user=user)
    if not assertion.user_verified:
        audit.record(EventTag.FACTOR_FAILURE, user_id=user.id, session_id=state.id, ip=ip, factor="passkey",
                     reason=PasskeyNeedsVerification.reason)  # fmt: skip
        raise PasskeyNeedsVerification()
    used = methods.joined([_key_method(assertion.passkey), methods.USER_PRESENCE])
    renewed = sessions.mark_reauthenticated(state, now, used)
    audit.record(EventTag.REAUTHENTICATE, user_id=user.id, session_id=state.id, ip=ip, methods=used)
    return renewed


def second_step(user: User, code: str, now: datetime, ip: str | None, session_id: int | None = None) -> str:
    """The second step wherever it is asked (sign-in, re-authentication, a password reset): an authenticator-app
    code (six digits, when the app is on) or else a recovery code. Returns the method it was; raises the factors'
    errors (each audited)."""
    if totp.is_code_shaped(code) and totp.is_enabled(user):
        totp.verify(user, code, now, ip=ip, session_id=session_id)
        return methods.AUTHENTICATOR_APP
    recovery.use(user, code, now, ip=ip, session_id=session_id)
    return methods.RECOVERY_CODE


def change_password(
    user: User, current: str, new: str, state: "sessions.ActiveSession", now: datetime, ip: str
) -> PasswordChanged:
    """Set a new password and sign out every other device in the same transaction. In this order: the local rules
    for the new password (a weak one is a typo to fix, not a guess to count), the current password as one
    rate-limited guess, and only then the breached-password range API (slow, and told a hash prefix: never for
    someone who does not know the current password). This session, having just proved the password, gets a new id
    (OWASP: a new id on every privilege change), so a cookie copied before the change stops working."""
    if passwords.normalize(new) == passwords.normalize(current):
        raise AccountError("Choose a password different from the current one.")
    problem = password_policy.local_problem(new, has_second_factor(user), user.email, user.name)
    if problem:
        raise AccountError(problem)
    with password_guess(session_guess_limits(user.id)):
        if not passwords.verify_password(user.password_hash, current):
            audit.record(EventTag.SIGN_IN_FAILURE, user_id=user.id, session_id=state.id, ip=ip, step="password_change")
            raise InvalidCredentials(user.id)
    problem = password_policy.breach_problem(new)
    if problem:
        raise AccountError(problem)
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = now
    ended = sessions.end_sessions(
        UserSession.user_id == user.id, UserSession.id != state.id, reason=REASON_PASSWORD_CHANGED, now=now
    )
    renewed = sessions.mark_reauthenticated(state, now)
    audit.record(EventTag.PASSWORD_CHANGE, user_id=user.id, session_id=state.id, ip=ip, signed_out=len(ended))
    return PasswordChanged(len(ended), renewed)


def _actor(by: User | None, ip: str | None) -> dict:
    """Who did it, for the audit record, when an owner did it from the people page (the command line names nobody)."""
    return {"by": by.id, "ip": ip} if by is not None else {}


def disable_user(user: User, now: datetime, *, by: User | None = None, ip: str | None = None) -> int:
    """Catalogue #31: no more sign-ins, and every session ends in this transaction, taking its apps' grants and
    refresh tokens (back-channel logouts queued). The account's last owner who can sign in stays, counted under the
    account's lock (a concurrent demotion or disabling of the other owners waits, then is counted). Returns the
    number of sessions ended."""
    user.lock_for_owner_change()
    if user.is_owner and user.other_active_owners() == 0:
        raise AccountError(f"{user.email} is the last owner of {user.account.name} who can sign in")
    user.disabled_at = user.disabled_at or now
    ended = sessions.end_sessions(UserSession.user_id == user.id, reason=sessions.REASON_USER_DISABLED, now=now)
    audit.record(EventTag.USER_DISABLE, user_id=user.id, account_id=user.account_id, count=len(ended),
                 **_actor(by, ip))  # fmt: skip
    return len(ended)


def enable_user(user: User, *, by: User | None = None, ip: str | None = None) -> None:
    user.disabled_at = None
    audit.record(EventTag.USER_ENABLE, user_id=user.id, account_id=user.account_id, **_actor(by, ip))


def delete_user(user: User, now: datetime, *, by: User | None = None, ip: str | None = None) -> int:
    """Disabled first (so that client apps hear of it and cached answers say "revoked"), then the row goes, and the
    database's cascades take the sessions, grants and refresh tokens; audit events stay, without the user."""
    ended = disable_user(user, now, by=by, ip=ip)
    audit.record(EventTag.USER_DELETE, account_id=user.account_id, count=ended, **_actor(by, ip))
    user.delete()
    return ended
