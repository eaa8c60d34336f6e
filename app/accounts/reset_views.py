"""Forgotten password pages (DESIGN §10): ask for a link, and set a new password through it."""

from flask import Blueprint, render_template, url_for

from app.accounts import password_reset, services
from app.accounts.errors import AccountError
from app.accounts.forms import ForgotPasswordForm, ResetPasswordForm
from app.clock import now
from app.extensions import db
from app.factors import totp
from app.factors.errors import FactorError
from app.factors.errors import TooManyAttempts as FactorTooManyAttempts
from app.web.auth import client_ip
from app.web.forms import too_many_attempts

bp = Blueprint("password_reset", __name__)


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        password_reset.request_reset(form.email.data, client_ip(), now())
        db.session.commit()
        # The same page whether or not the address is a user's, and whether or not a limit held the mail back.
        return render_template("accounts/forgot_password_sent.html", email=form.email.data)
    return render_template("accounts/forgot_password.html", form=form), 400 if form.errors else 200


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset(token: str):
    try:
        link = password_reset.check_link(token, now())
    except password_reset.ResetLinkInvalid:
        return render_template("accounts/reset_link_invalid.html"), 404
    form, headers = ResetPasswordForm(), {}
    if form.validate_on_submit():
        try:
            password_reset.reset_password(token, form.new_password.data, form.code.data, now(), client_ip())
        except password_reset.ResetLinkInvalid:
            db.session.rollback()
            return render_template("accounts/reset_link_invalid.html"), 404
        except AccountError as exc:
            form.new_password.errors.append(str(exc))
        except FactorTooManyAttempts as limited:
            headers = too_many_attempts(form.code, limited.retry_after_seconds)
        except FactorError as wrong:
            form.code.errors.append(str(wrong))
        db.session.commit()  # a wrong code is audited (a recovery code spent) even though nothing else changes
        if not form.errors:
            return render_template("accounts/password_reset_done.html", login_url=url_for("accounts.login"))
    user = link.user
    page = render_template("accounts/reset_password.html", form=form, second_step=link.second_step,
                           has_app=totp.is_enabled(user), password_hint=services.password_hint(user))  # fmt: skip
    return page, (429 if headers else 400 if form.errors else 200), headers
