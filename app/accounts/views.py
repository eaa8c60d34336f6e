"""Sign in, sign out, the home page, re-authentication and the password page."""

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from app.accounts import email_change, services
from app.accounts.email_change_forms import EmailChangeForm
from app.accounts.errors import AccountDisabled, AccountError, InvalidCredentials, TooManyAttempts
from app.accounts.forms import LoginForm, PasswordChangeForm, ReauthenticateForm, SecondStepForm
from app.clock import now
from app.extensions import db
from app.factors import totp
from app.factors.errors import FactorError
from app.factors.errors import TooManyAttempts as FactorTooManyAttempts
from app.passkeys.models import PasskeyCredential
from app.security.redirects import safe_next
from app.sessions.services import ActiveSession, SessionEnded
from app.web import pending_sign_in
from app.web.auth import (
    client_ip,
    establish_session,
    forget_session,
    is_fresh,
    login_required,
    reauthenticate_url,
    renew_session,
    request_meta,
    signed_in_user,
)
from app.web.forms import too_many_attempts
from app.web.sign_out_reasons import SECOND_STEP_EXPIRED, notice_for

bp = Blueprint("accounts", __name__)

GENERIC_FAILURE = "Invalid email or password."
DISABLED_FAILURE = "This sign-in has been disabled. Ask an owner of your account."
WRONG_PASSWORD = "That is not your current password."


def _form_status(form, headers: dict) -> int:
    if headers:
        return 429
    return 400 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    form, headers = LoginForm(next=request.args.get("next", "")), {}
    if form.validate_on_submit():
        meta = request_meta()
        try:
            previous = g.current_session.id if g.current_session else None
            signed_in = services.sign_in(form.email.data, form.password.data, meta, now(), replaces=previous)
        except TooManyAttempts as limited:
            headers = too_many_attempts(form.password, limited.retry_after_seconds)
        except InvalidCredentials as failure:
            db.session.commit()  # the failure is audited even though nobody signs in
            form.password.errors.append(DISABLED_FAILURE if isinstance(failure, AccountDisabled) else GENERIC_FAILURE)
        else:
            db.session.commit()
            if isinstance(signed_in, services.SecondStepNeeded):
                pending_sign_in.begin(signed_in.user, form.next.data or "", now())
                return redirect(url_for("accounts.verify"), 303)
            return _signed_in(signed_in, form.next.data, meta.device_id)
    notice = notice_for(request.args.get("reason"))
    return render_template("accounts/login.html", form=form, notice=notice), _form_status(form, headers), headers


def _signed_in(signed_in: services.SignedIn, next_url: str | None, device_id: str):
    response = redirect(safe_next(next_url, url_for("accounts.home")), 303)
    establish_session(response, ActiveSession.of(signed_in.session), device_id)
    return response


@bp.route("/login/verify", methods=["GET", "POST"])
def verify():
    """The second step (DESIGN §9): a code from the authenticator app, or a recovery code, after the password."""
    pending = pending_sign_in.current(now())
    if pending is None:
        pending_sign_in.end()
        return redirect(url_for("accounts.login", reason=SECOND_STEP_EXPIRED), 303)
    form, headers = SecondStepForm(), {}
    if form.validate_on_submit():
        meta = request_meta()
        try:
            previous = g.current_session.id if g.current_session else None
            signed_in = services.complete_second_step(pending.user.id, form.code.data, meta, now(), replaces=previous)
        except FactorTooManyAttempts as limited:
            headers = too_many_attempts(form.code, limited.retry_after_seconds)
        except FactorError as wrong:
            form.code.errors.append(str(wrong))
        except InvalidCredentials:
            pending_sign_in.end()
            db.session.commit()
            return redirect(url_for("accounts.login"), 303)
        db.session.commit()  # a failure is audited (and a used code spent) even though nobody signs in
        if not form.errors:
            pending_sign_in.end()
            return _signed_in(signed_in, pending.next_url, meta.device_id)
    user = pending.user
    page = render_template("accounts/verify.html", form=form, user=user, has_app=totp.is_enabled(user),
                           has_passkey=bool(PasskeyCredential.of_user(user.id)))  # fmt: skip
    return page, _form_status(form, headers), headers


@bp.post("/logout")
@login_required
def logout():
    services.sign_out(g.current_session.id, now(), ip=client_ip())
    db.session.commit()
    forget_session()
    flash("You have signed out.", "success")
    return redirect(url_for("accounts.login"), 303)


@bp.get("/")
@login_required
def home():
    return render_template("home/index.html", user=signed_in_user(), session=g.current_session)


@bp.route("/account/reauthenticate", methods=["GET", "POST"])
@login_required
def reauthenticate():
    form, headers = ReauthenticateForm(next=request.args.get("next", "")), {}
    user = signed_in_user()
    if form.validate_on_submit():
        try:
            renewed = services.confirm_password(
                user, form.password.data, g.current_session, now(), client_ip(), code=form.code.data
            )
        except TooManyAttempts as limited:
            headers = too_many_attempts(form.password, limited.retry_after_seconds)
        except InvalidCredentials:
            form.password.errors.append(WRONG_PASSWORD)
        except FactorTooManyAttempts as limited:
            headers = too_many_attempts(form.code, limited.retry_after_seconds)
        except FactorError as wrong:
            form.code.errors.append(str(wrong))
        except SessionEnded:  # signed out from elsewhere while the password was being checked
            forget_session()
            return redirect(url_for("accounts.login"), 303)
        db.session.commit()
        if not form.errors:
            response = redirect(safe_next(form.next.data, url_for("accounts.home")), 303)
            renew_session(response, renewed)  # a new session id on re-authentication, as on sign-in
            return response
    factors = {"second_step": services.has_second_factor(user), "has_app": totp.is_enabled(user),
               "has_passkey": bool(PasskeyCredential.of_user(user.id))}  # fmt: skip
    page = render_template("accounts/reauthenticate.html", form=form, **factors)
    return page, _form_status(form, headers), headers


@bp.route("/account", methods=["GET", "POST"])
@login_required
def password():
    if services.has_second_factor(signed_in_user()) and not is_fresh():
        # DESIGN §9: with a second factor, a password change needs a recent sign-in with it, not the password alone.
        return redirect(reauthenticate_url(request.path), 303)
    form, headers = PasswordChangeForm(), {}
    if form.validate_on_submit():
        try:
            changed = services.change_password(
                signed_in_user(), form.current_password.data, form.new_password.data, g.current_session, now(),
                client_ip(),
            )  # fmt: skip
        except TooManyAttempts as limited:
            headers = too_many_attempts(form.current_password, limited.retry_after_seconds)
        except InvalidCredentials:
            form.current_password.errors.append(WRONG_PASSWORD)
        except AccountError as exc:
            form.new_password.errors.append(str(exc))
        except SessionEnded:  # signed out from elsewhere while the password was being checked
            forget_session()
            return redirect(url_for("accounts.login"), 303)
        db.session.commit()
        if not form.errors:
            flash(f"Password changed. {_signed_out_sentence(changed.signed_out)}", "success")
            response = redirect(url_for("accounts.password"), 303)
            renew_session(response, changed.session)  # the old cookie stops working
            return response
    return account_page(form), _form_status(form, headers), headers


def account_page(form: PasswordChangeForm, email_form: EmailChangeForm | None = None) -> str:
    """/account: the password card, and the e-mail card (its form posts to email_change.request_change)."""
    user = signed_in_user()
    return render_template(
        "accounts/password.html", form=form, user=user, password_hint=services.password_hint(user), fresh=is_fresh(),
        email_form=EmailChangeForm(formdata=None) if email_form is None else email_form,
        pending_change=email_change.pending(user, now()),
    )  # fmt: skip


def _signed_out_sentence(count: int) -> str:
    if count == 0:
        return "No other device was signed in."
    return f"Signed out {count} other device{'s' if count != 1 else ''}."
