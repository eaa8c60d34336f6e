"""The kit's routes: sign in (authorization code + PKCE), the callback, sign out, the back-channel logout receiver."""

import logging
from datetime import UTC, datetime, timedelta

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, request, session

from app.relying_party import (
    ACR_VALUES,
    EXTENSION_KEY,
    PENDING_KEY,
    SILENT_KEY,
    USER_KEY,
    Gatehouse,
    acr_meets,
    safe_next,
    tokens,
)
from app.relying_party.portal import PortalRefused, PortalUnavailable
from app.relying_party.stores import StoreError
from app.security.origin import sent_by_another_site

log = logging.getLogger(__name__)

bp = Blueprint("gatehouse", __name__, template_folder="templates")

NO_STORE = {"Cache-Control": "no-store"}
PENDING_SECONDS = 600  # a sign-in not completed within ten minutes is forgotten
MAX_PENDING = 4  # sign-ins started in other tabs that may still come back
FAILED_NOTICE = "Signing in did not work. Please try again."
UNAVAILABLE_NOTICE = "Gatehouse cannot be reached right now. Please try again in a moment."


def _kit() -> Gatehouse:
    return current_app.extensions[EXTENSION_KEY]


def _home() -> str:
    return request.script_root + "/"


def _no_store(response):
    response.headers.update(NO_STORE)
    return response


@bp.get("/auth/login")
def login():
    """Start the authorization code flow; ?silent=1 asks prompt=none (OIDC Core §3.1.2.1) and records the try;
    ?acr=… one of the portal's acr values asks it as acr_values (OIDC Core §3.1.2.1, step-up)."""
    kit, now = _kit(), _kit().clock()
    silent = request.args.get("silent") == "1"
    acr = request.args.get("acr") if request.args.get("acr") in ACR_VALUES else None
    next_url = safe_next(request.args.get("next"))
    extra = {"device_id": g.gatehouse_device_id} | ({"prompt": "none"} if silent else {})
    extra |= {"acr_values": acr} if acr else {}
    try:
        started = kit.portal.authorization_request(kit.url("gatehouse.callback"), **extra)
    except (PortalUnavailable, PortalRefused) as exc:
        log.warning("cannot start signing in: %s", exc)
        flash(UNAVAILABLE_NOTICE, "warning")
        return _no_store(redirect(_home()))
    # Ours, not Authlib's session state: several tabs may sign in at once, each coming back to its own page.
    pending = _live_pending(now)
    pending[started["state"]] = {"verifier": started["code_verifier"], "nonce": started["nonce"], "next": next_url,
                                 "silent": silent, "acr": acr, "at": now.timestamp()}  # fmt: skip
    session[PENDING_KEY] = dict(list(pending.items())[-MAX_PENDING:])
    if silent:
        session[SILENT_KEY] = {"at": now.timestamp(), "device": g.gatehouse_device_id}
    return _no_store(redirect(started["url"]))


def _live_pending(now: datetime) -> dict:
    horizon = now.timestamp() - PENDING_SECONDS
    return {state: p for state, p in (session.get(PENDING_KEY) or {}).items() if p.get("at", 0) > horizon}


@bp.get("/auth/callback")
def callback():
    """The authorization response (RFC 6749 §4.1.2): state and iss (RFC 9207) first, then the code."""
    kit, now = _kit(), _kit().clock()
    pending_all = _live_pending(now)
    pending = pending_all.pop(request.args.get("state") or "", None)
    session[PENDING_KEY] = pending_all
    if pending is None:
        flash("That sign-in has expired or was started elsewhere. Please sign in again.", "warning")
        return _no_store(redirect(_home()))
    # RFC 9207 §2.4: a response from another issuer (mix-up); Authlib's client does not check iss, so this is ours.
    if request.args.get("iss") != kit.issuer:
        log.warning("authorization response with iss %r", request.args.get("iss"))
        flash(FAILED_NOTICE, "warning")
        return _no_store(redirect(_home()))
    error = request.args.get("error")
    if error:
        if not pending["silent"]:  # a failed silent try just leaves the user signed out; SILENT_KEY stops a loop
            flash("Signing in was cancelled." if error == "access_denied" else FAILED_NOTICE, "warning")
        return _no_store(redirect(pending["next"]))
    try:
        user = _complete(kit, request.args.get("code") or "", pending, now)
    except (tokens.InvalidToken, PortalRefused, PortalUnavailable) as exc:
        log.warning("sign-in failed: %s", exc)
        flash(FAILED_NOTICE, "warning")
        return _no_store(redirect(_home()))
    if pending.get("acr") and not acr_meets(user["acr"], pending["acr"]):
        # OIDC Core §3.1.3.7 step 11: the acr asked for was not given (the user has no second step): the view says so
        # instead of asking again, until the next sign-in.
        user["step_up_refused"] = pending["acr"]
    session[USER_KEY] = user
    session.pop(SILENT_KEY, None)
    kit.forget_device_answer(g.gatehouse_device_id)
    g.gatehouse_renew_device = True
    return _no_store(redirect(pending["next"]))


def _complete(kit: Gatehouse, code: str, pending: dict, now: datetime) -> dict:
    """Redeem the code, validate the ID token, ask userinfo for the name (its sub must match, OIDC Core §5.3.2)."""
    answer = kit.portal.exchange_code(code, pending["verifier"], kit.url("gatehouse.callback"))
    claims = tokens.id_token(answer.get("id_token"), keys=kit.portal.signing_key, issuer=kit.issuer,
                             client_id=kit.client_id, nonce=pending["nonce"], now=now,
                             access_token=answer.get("access_token"))  # fmt: skip
    if not isinstance(answer.get("grant_token"), str):
        raise PortalRefused(200, {"error": "no grant_token in the token response"})
    name = claims.get("name")
    try:
        info = kit.portal.userinfo(answer)
        if info.get("sub") == claims["sub"]:
            name = info.get("name") or name
    except (PortalRefused, PortalUnavailable, KeyError) as exc:
        log.info("userinfo unavailable, signing in without a name: %s", exc)
    acr, amr = claims.get("acr"), claims.get("amr")
    return {"sub": claims["sub"], "name": name, "sid": claims["sid"], "grant": answer["grant_token"],
            "id_token": answer["id_token"], "acr": acr if isinstance(acr, str) else None,
            "amr": [m for m in amr if isinstance(m, str)] if isinstance(amr, list) else []}  # fmt: skip


@bp.post("/auth/logout")
def logout():
    """End the local session, then RP-Initiated Logout 1.0 §2 at the portal with the ID token as hint."""
    if sent_by_another_site():  # logout CSRF: a sign-out form posted by another site
        abort(403)
    kit = _kit()
    user = session.pop(USER_KEY, None)
    session.pop(PENDING_KEY, None)
    kit.forget_device_answer(g.gatehouse_device_id)
    if not user:
        return _no_store(redirect(_home(), 303))
    try:
        end_session = kit.portal.logout_url(user.get("id_token"), kit.post_logout_redirect_uri())
    except (PortalUnavailable, PortalRefused) as exc:
        log.warning("signed out here only, the portal cannot be reached: %s", exc)
        flash("You are signed out of this app; Gatehouse could not be reached to sign you out there.", "warning")
        return _no_store(redirect(_home(), 303))
    return _no_store(redirect(end_session, 303))


def _logout_error(description: str, status: int = 400):
    return jsonify(error="invalid_request", error_description=description), status, NO_STORE


@bp.post("/auth/backchannel-logout")
def backchannel_logout():
    """Back-Channel Logout 1.0 §2.5-2.8: validate, refuse a replay, end the local session of that sid; no-store."""
    kit, now = _kit(), _kit().clock()
    if request.mimetype != "application/x-www-form-urlencoded":
        return _logout_error("Send logout_token as application/x-www-form-urlencoded.")
    try:
        claims = tokens.logout_token(request.form.get("logout_token") or "", keys=kit.portal.signing_key,
                                     issuer=kit.issuer, client_id=kit.client_id, now=now)  # fmt: skip
    except tokens.InvalidToken as exc:
        log.warning("back-channel logout refused: %s", exc)
        return _logout_error(str(exc))
    except (PortalUnavailable, PortalRefused) as exc:  # the keys cannot be fetched: let the portal retry
        log.warning("back-channel logout: JWKS unavailable: %s", exc)
        return _logout_error("The signing keys cannot be fetched right now.", 503)
    remember_until = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=tokens.LEEWAY_SECONDS)
    try:
        if not kit.store.add(f"jti:{claims['jti']}", True, remember_until, now):  # §2.6 step 7: no replay
            return _logout_error("This logout token was already used.")
        kit.store.set(f"sid:{claims['sid']}", True, now + kit.revoked_sid_ttl, now)
    except StoreError as exc:
        log.warning("back-channel logout: store unavailable: %s", exc)
        return _logout_error("The logout cannot be recorded right now.", 503)
    return "", 200, NO_STORE
