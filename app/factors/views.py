"""/account/two-step (DESIGN §9): the authenticator app and recovery codes. Passkeys have their own views and a
section of this page (templates/passkeys/_section.html)."""

from flask import Blueprint, flash, g, make_response, redirect, render_template, url_for

from app.clock import now
from app.extensions import db
from app.factors import totp, two_step
from app.factors.errors import (
    AlreadyEnrolled,
    FactorError,
    NotEnrolled,
    SecondStepRequired,
    TooManyAttempts,
    WrongCode,
)
from app.factors.forms import AuthenticatorCodeForm
from app.sessions import methods
from app.sessions import services as sessions
from app.web.auth import client_ip, fresh_auth_required, is_fresh, login_required, renew_session, signed_in_user

bp = Blueprint("factors", __name__)

# The service's own message also mentions recovery codes, which only stand in for a code at sign-in.
WRONG_SETUP_CODE = "That code is not right. Enter the 6-digit code the app shows for Gatehouse now."


def _actor() -> dict:
    """The ip and session id every factor service records in its audit events."""
    return {"ip": client_ip(), "session_id": g.current_session.id}


def _back_to_page(message: str, tone: str):
    flash(message, tone)
    return redirect(url_for("factors.page"), 303)


@bp.get("/account/two-step")
@login_required
def page():
    overview = two_step.overview(signed_in_user())
    # Fresh: the buttons open their confirmation modals; otherwise they lead to the confirmation pages, which ask
    # for the password first (fresh_auth_required), so nobody confirms twice.
    return render_template("factors/index.html", overview=overview, passkeys=overview.passkeys, fresh=is_fresh())


@bp.post("/account/two-step/authenticator/new")
@login_required
def begin_setup():
    try:
        totp.begin_enrolment(signed_in_user(), now())
    except AlreadyEnrolled as refused:
        return _back_to_page(str(refused), "info")
    db.session.commit()
    # Post/redirect/get: reloading the set-up step shows the same QR code instead of making a new secret.
    return redirect(url_for("factors.setup"), 303)


@bp.route("/account/two-step/authenticator/setup", methods=["GET", "POST"])
@login_required
def setup():
    form, headers = AuthenticatorCodeForm(), {}
    if form.validate_on_submit():
        try:
            turned_on = two_step.turn_on_authenticator(signed_in_user(), form.code.data, now(), **_actor())
        except (AlreadyEnrolled, NotEnrolled) as moved_on:  # a second tab, or the form sent again after success
            db.session.commit()
            return _back_to_page(str(moved_on), "info")
        except TooManyAttempts as limited:  # RFC 6585 §4: 429 with the wait, said next to the field too
            headers = {"Retry-After": str(limited.retry_after_seconds)}
            form.code.errors.append(str(limited))
        except WrongCode:
            form.code.errors.append(WRONG_SETUP_CODE)
        except FactorError as refused:  # CodeReused: a code from a step already accepted
            form.code.errors.append(str(refused))
        else:
            # The code just proved the app on this device: the session counts it (app/sessions/methods.py).
            renewed = sessions.add_method(g.current_session, methods.AUTHENTICATOR_APP)
        db.session.commit()  # a refused code is audited even though nothing turns on
        if not form.errors:
            page = make_response(render_template("factors/codes.html", turned_on=turned_on,
                                                 codes=turned_on.new_recovery_codes))  # fmt: skip
            renew_session(page, renewed)
            return page
    enrolment = totp.pending_enrolment(signed_in_user(), now())
    if enrolment is None:
        return _back_to_page("No set-up is in progress. Start it again from here.", "info")
    status = 429 if headers else 400 if form.errors else 200
    return render_template("factors/setup.html", form=form, enrolment=enrolment), status, headers


@bp.get("/account/two-step/authenticator/remove")
@fresh_auth_required
def confirm_turn_off():
    """The confirmation page when JavaScript is off, and where re-authentication comes back to."""
    return render_template("factors/confirm_turn_off.html")


@bp.post("/account/two-step/authenticator/remove")
@fresh_auth_required
def turn_off():
    try:
        discarded = two_step.turn_off_authenticator(signed_in_user(), now(), **_actor())
    except NotEnrolled as refused:
        return _back_to_page(str(refused), "info")
    except SecondStepRequired as refused:
        return _back_to_page(str(refused), "danger")
    db.session.commit()
    codes = " Your recovery codes were discarded with it." if discarded else ""
    return _back_to_page(f"The authenticator app is off.{codes}", "success")


@bp.get("/account/two-step/recovery-codes/new")
@fresh_auth_required
def confirm_recovery_codes():
    return render_template("factors/confirm_recovery_codes.html")


@bp.post("/account/two-step/recovery-codes/new")
@fresh_auth_required
def recovery_codes():
    try:
        codes = two_step.new_recovery_codes(signed_in_user(), now(), **_actor())
    except NotEnrolled as refused:
        return _back_to_page(str(refused), "info")
    db.session.commit()
    return render_template("factors/codes.html", turned_on=None, codes=codes)
