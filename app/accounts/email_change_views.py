"""Changing one's e-mail address (DESIGN §10, issue 12 item 3): asked on /account, confirmed by the new address."""

from flask import Blueprint, flash, g, redirect, render_template, url_for

from app.accounts import email_change
from app.accounts.email_change_forms import EmailChangeConfirmForm, EmailChangeForm
from app.accounts.errors import AccountError
from app.accounts.forms import PasswordChangeForm
from app.accounts.views import account_page
from app.clock import now
from app.extensions import db
from app.web.auth import client_ip, is_fresh, login_required, reauthenticate_url, signed_in_user
from app.web.forms import wait_words

bp = Blueprint("email_change", __name__)
INVALID_EXPLANATION = ("A link to confirm a new e-mail address works once, for 24 hours, and only the newest one sent; "
                       "it stops when the address changes. This one has been used, has expired, was replaced by a "
                       "newer one, or was not copied whole.")  # fmt: skip


@bp.post("/account/email")
@login_required
def request_change():
    if not is_fresh():  # a sensitive action (ASVS 5.0 7.5.1); back to the page, whose form then shows again
        return redirect(reauthenticate_url(url_for("accounts.password")), 303)
    form, headers = EmailChangeForm(), {}
    if form.validate_on_submit():
        try:
            new_email = email_change.request_change(signed_in_user(), form.email.data, now(), client_ip(),
                                                    g.current_session.id)  # fmt: skip
        except email_change.TooManyRequests as limited:  # RFC 6585 §4: 429 with the wait, said next to the field
            wait = limited.retry_after_seconds
            headers = {"Retry-After": str(wait)}
            form.email.errors.append(f"You asked for too many changes. Try again in {wait_words(wait)}.")
        except AccountError as refused:
            form.email.errors.append(str(refused))
        else:
            db.session.commit()
            flash(f"We sent a link to {new_email}. Open it to confirm the change.", "success")
            return redirect(url_for("accounts.password"), 303)
    page = account_page(PasswordChangeForm(formdata=None), email_form=form)
    return page, 429 if headers else 400, headers


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """The link is its own authority: any browser, signed in or not. GET asks, only the button's POST changes."""
    try:
        link = email_change.check_link(token, now())
    except email_change.LinkInvalid:
        return _invalid()
    form = EmailChangeConfirmForm()
    if form.validate_on_submit():
        try:
            email_change.confirm(token, now(), client_ip())
        except email_change.LinkInvalid:
            db.session.rollback()
            return _invalid()
        except email_change.AddressTaken:
            db.session.rollback()
            return render_template("accounts/email_change_taken.html", link=link), 409
        db.session.commit()
        return render_template("accounts/email_change_done.html", link=link, signed_in=g.current_session is not None)
    page = render_template("accounts/email_change_confirm.html", form=form, link=link, token=token)
    return page, 400 if form.errors else 200


def _invalid():
    return render_template("accounts/reset_link_invalid.html", explanation=INVALID_EXPLANATION,
                           again_url=url_for("accounts.password"), again_label="Start again"), 404  # fmt: skip
