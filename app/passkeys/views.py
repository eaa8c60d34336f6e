"""Passkeys of the signed-in user (DESIGN §9, issue 11 item 3): the registration ceremony as two JSON calls made by
static/js/passkeys.js, and rename and remove as plain forms. Their list is a section of /account/two-step
(templates/passkeys/_section.html, rendered by app.factors.views with `passkeys` and `fresh`).

The ceremony's handle (its challenge, whose digest and binding to this user the database keeps) waits in the signed
session between the two calls; a missing, replayed or expired one is refused by the service like any other.
"""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import TooManyRequests

from app.clock import now
from app.extensions import db
from app.factors.errors import SecondStepRequired
from app.passkeys import enrolment, services
from app.passkeys.errors import PasskeyError, PasskeyNotFound
from app.passkeys.forms import RenameForm
from app.passkeys.models import PasskeyCredential
from app.security import ratelimit
from app.sessions import methods
from app.sessions import services as sessions
from app.sessions.devices import device_name
from app.web.auth import client_ip, fresh_auth_required, json_api, login_required, renew_session, signed_in_user

bp = Blueprint("passkeys", __name__)

HANDLE_KEY = "passkey_registration"


@bp.post("/account/passkeys/register/options")
@json_api
@login_required
def registration_options():
    user = signed_in_user()
    # Each call stores a challenge: limited per user, before anything is written (app.security.ratelimit).
    wait = ratelimit.retry_after(current_app.config["PASSKEY_RATE_LIMIT"], "passkey-register", f"user:{user.id}")
    if wait is not None:
        raise TooManyRequests(retry_after=wait)
    try:
        handle, options_json = services.registration_options(user, now())
    except PasskeyError as refused:
        return _refusal(refused)
    db.session.commit()
    session[HANDLE_KEY] = handle
    return Response(options_json, mimetype="application/json")


@bp.post("/account/passkeys/register")
@json_api
@login_required
def register():
    if not request.is_json:
        abort(415)
    user, handle = signed_in_user(), session.pop(HANDLE_KEY, None)
    agent = device_name(request.headers.get("User-Agent", ""))
    try:
        added = enrolment.add(user, handle, request.get_data(cache=False), agent, now(), **_actor())
    except PasskeyError as refused:
        db.session.commit()  # the spent challenge and the refusal's audit event are part of the outcome
        return _refusal(refused)
    # The passkey was just used on this device: the session counts it (app/sessions/methods.py).
    key = methods.SOFTWARE_KEY if added.passkey.backed_up else methods.HARDWARE_KEY
    renewed = sessions.add_method(g.current_session, key)
    db.session.commit()
    flash(f"Passkey “{added.passkey.name}” added. You can rename it below.", "success")
    response = jsonify(passkey={"id": added.passkey.public_id, "name": added.passkey.name},
                       recovery_codes=added.recovery_codes)  # fmt: skip
    renew_session(response, renewed)
    return response


@bp.post("/account/passkeys/<public_id>/rename")
@login_required
def rename(public_id: str):
    form = RenameForm()
    if not form.validate_on_submit():
        return _back(f"Name: {form.name.errors[0]}", "danger")
    try:
        passkey = services.rename(signed_in_user(), public_id, form.name.data, now())
    except PasskeyNotFound:
        abort(404)
    except PasskeyError as refused:
        return _back(refused.message, "danger")
    db.session.commit()
    return _back(f"Passkey renamed to “{passkey.name}”.", "success")


@bp.get("/account/passkeys/<public_id>/remove")
@fresh_auth_required
def confirm_remove(public_id: str):
    """The confirmation page when JavaScript is off, and where re-authentication comes back to."""
    passkey = PasskeyCredential.by_public_id(signed_in_user().id, public_id)
    if passkey is None:
        abort(404)
    return render_template("passkeys/confirm_remove.html", passkey=passkey)


@bp.post("/account/passkeys/<public_id>/remove")
@fresh_auth_required
def remove(public_id: str):
    try:
        codes_discarded = enrolment.remove(signed_in_user(), public_id, now())
    except PasskeyNotFound:
        abort(404)
    except SecondStepRequired as refused:
        return _back(str(refused), "danger")
    db.session.commit()
    extra = " You have no second step left, so your recovery codes were discarded too." if codes_discarded else ""
    return _back("Passkey removed. It can no longer sign in to Gatehouse." + extra, "success")


def _actor() -> dict:
    return {"ip": client_ip(), "session_id": g.current_session.id}


def _refusal(refused: PasskeyError):
    """DESIGN §8: a clear JSON error with the service's message (the OAuth error shape), never a 5xx."""
    return jsonify(error=refused.reason, error_description=refused.message), 400


def _back(message: str, tone: str):
    flash(message, tone)
    return redirect(url_for("factors.page"), 303)
