"""Signing in with a passkey (DESIGN §9): on /login without a password (a discoverable credential, both steps when
the authenticator verified the user), as the second step on /login/verify, and to confirm it is you before a
sensitive change (/account/reauthenticate). Two JSON calls each, made by
static/js/passkey-sign-in.js: the options (whose challenge handle waits in the signed session), then the browser's
PublicKeyCredential.toJSON() as the body, read and bounded by the passkey service. CSRF: the X-CSRFToken header,
checked by Flask-WTF as on every POST.
"""

from flask import Blueprint, Response, current_app, g, jsonify, request, session, url_for
from werkzeug.exceptions import TooManyRequests

from app.accounts import services
from app.accounts.errors import InvalidCredentials
from app.clock import now
from app.extensions import db
from app.passkeys import services as passkeys
from app.passkeys.errors import PasskeyError
from app.security import ratelimit
from app.security.redirects import safe_next
from app.sessions.services import ActiveSession, SessionEnded
from app.web import pending_sign_in
from app.web.auth import (
    client_ip,
    establish_session,
    forget_session,
    json_api,
    login_required,
    renew_session,
    request_meta,
    signed_in_user,
)

bp = Blueprint("passkey_sign_in", __name__)

HANDLE_KEY = "passkey_sign_in"
SECOND_STEP_ENDED = "Your sign-in was not finished in time. Please sign in again."


@bp.post("/login/passkey/options")
@json_api
def options():
    """Anonymous: every call stores a challenge, so calls are limited per client address before anything is written."""
    wait = ratelimit.retry_after(current_app.config["PASSKEY_SIGN_IN_RATE_LIMIT"], "passkey-sign-in",
                                 ratelimit.address_key(client_ip()))  # fmt: skip
    if wait is not None:
        raise TooManyRequests(retry_after=wait)
    return _options(passkeys.authentication_options, now())


@bp.post("/login/passkey")
@json_api
def sign_in():
    meta = request_meta()
    previous = g.current_session.id if g.current_session else None
    try:
        signed_in = services.sign_in_with_passkey(session.pop(HANDLE_KEY, None), request.get_data(cache=False), meta,
                                                  now(), replaces=previous)  # fmt: skip
    except PasskeyError as refused:
        db.session.commit()  # the spent challenge and the refusal's audit event are part of the outcome
        return _refusal(refused)
    db.session.commit()
    return _signed_in(signed_in, request.args.get("next"), meta.device_id)


@bp.post("/login/verify/passkey/options")
@json_api
def second_step_options():
    pending = pending_sign_in.current(now())
    if pending is None:
        return _sign_in_expired()
    return _options(lambda at: passkeys.authentication_options(at, user=pending.user), now())


@bp.post("/login/verify/passkey")
@json_api
def second_step():
    pending = pending_sign_in.current(now())
    if pending is None:
        return _sign_in_expired()
    meta = request_meta()
    previous = g.current_session.id if g.current_session else None
    try:
        signed_in = services.complete_second_step_with_passkey(
            pending.user.id, session.pop(HANDLE_KEY, None), request.get_data(cache=False), meta, now(), previous
        )
    except (PasskeyError, InvalidCredentials) as refused:
        db.session.commit()
        if isinstance(refused, InvalidCredentials):
            pending_sign_in.end()
            return _sign_in_expired()
        return _refusal(refused)
    db.session.commit()
    pending_sign_in.end()
    return _signed_in(signed_in, pending.next_url, meta.device_id)


@bp.post("/account/reauthenticate/passkey/options")
@json_api
@login_required
def reauthenticate_options():
    return _options(lambda at: passkeys.authentication_options(at, user=signed_in_user()), now())


@bp.post("/account/reauthenticate/passkey")
@json_api
@login_required
def reauthenticate():
    """Confirming it is you with a passkey that verified you: both steps, fresh (DESIGN §9)."""
    try:
        answer = request.get_data(cache=False)
        handle = session.pop(HANDLE_KEY, None)
        renewed = services.confirm_with_passkey(signed_in_user(), handle, answer, g.current_session, now(), client_ip())
    except PasskeyError as refused:
        db.session.commit()
        return _refusal(refused)
    except SessionEnded:
        forget_session()
        return jsonify(error="signed_out", error_description="You were signed out. Sign in again."), 401
    db.session.commit()
    response = jsonify(redirect=safe_next(request.args.get("next"), url_for("accounts.home")))
    renew_session(response, renewed)  # a new session id on re-authentication, as on sign-in
    return response


def _sign_in_expired():
    return jsonify(error="sign_in_expired", error_description=SECOND_STEP_ENDED), 400


def _options(make, at):
    try:
        handle, options_json = make(at)
    except PasskeyError as refused:
        return _refusal(refused)
    db.session.commit()
    session[HANDLE_KEY] = handle
    return Response(options_json, mimetype="application/json")


def _signed_in(signed_in: services.SignedIn, next_url: str | None, device_id: str):
    destination = safe_next(next_url, url_for("accounts.home"))
    response = jsonify(redirect=destination)
    establish_session(response, ActiveSession.of(signed_in.session), device_id)
    return response


def _refusal(refused: PasskeyError):
    """DESIGN §8: a clear JSON error with the service's message, never a 5xx."""
    return jsonify(error=refused.reason, error_description=refused.message), 400
