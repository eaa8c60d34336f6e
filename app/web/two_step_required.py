"""The owner's "Require two-step verification" (DESIGN §9, issue 11 item 5), enforced on every request: a signed-in
person of such an account who has no second factor reaches only what setting one up needs, and every other request
is sent to /account/two-step. Once a factor is on, the next request goes through (no new sign-in needed).

It runs after the session is loaded (app.web.auth.load_current_session), for signed-in requests to guarded endpoints
only, and costs them no query the view would not make anyway (the user, with the account joined in) unless the
account requires two-step verification."""

from flask import Flask, g, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import joinedload

from app.accounts.models import User
from app.accounts.two_step_policy import must_set_up
from app.extensions import db
from app.web.auth import wants_json
from app.web.htmx import client_redirect, is_htmx

SET_UP_PAGE = "factors.page"
# Exactly what enrolment needs: the two-step page and its set-up steps, the passkey registration ceremony,
# re-authentication, signing out (here or from a client app), the expiry banner's poll and its "Stay signed in",
# reporting a sign-in as not one's own, and static files. A request no route matched (404, 405) has no endpoint and
# gets its error page.
ALLOWED_ENDPOINTS = frozenset(
    {
        SET_UP_PAGE,
        "factors.begin_setup",
        "factors.setup",
        "passkeys.registration_options",
        "passkeys.register",
        "accounts.reauthenticate",
        "accounts.logout",
        "oauth.logout",
        "sessions.status",
        "sessions.extend",
        "not_me.confirm",  # a new-device alert's "This wasn't me": the link is its own authority, whoever is signed in
        "not_me.report",
        "email_change.confirm",  # an e-mail change's link: its own authority too, whoever is signed in
        "people.accept",  # an invitation's link: its own authority; accepting replaces whoever is signed in
        "static",
    }
)
MESSAGE = "Your account requires two-step verification. Set up an authenticator app or a passkey to continue."


def hold_until_set_up() -> ResponseReturnValue | None:
    """Before every request: None lets it through; otherwise the answer that sends it to set a factor up."""
    if request.endpoint is None or request.endpoint in ALLOWED_ENDPOINTS or _silent_authorization():
        return None
    state = g.get("current_session")
    if state is None:
        return None
    # The user and their account in one query; the view's current_user() then finds the user already loaded.
    user = db.session.get(User, state.user_id, options=[joinedload(User.account)])
    if user is None or not must_set_up(user):
        return None
    target = url_for(SET_UP_PAGE)
    if wants_json():
        return jsonify(error="two_step_required", error_description=MESSAGE, location=target), 403
    # htmx would swap a redirect's page in as a fragment: it navigates on HX-Redirect instead.
    return client_redirect(target) if is_htmx() else redirect(target, 303)


def _silent_authorization() -> bool:
    """OIDC Core §3.1.2.6: a prompt=none request is answered to the client app (interaction_required, by
    app.oauth.authorize.decide), never with a page the user cannot see."""
    return request.endpoint == "oauth.authorize" and "none" in (request.values.get("prompt") or "").split()


def init_two_step_required(app: Flask) -> None:
    app.before_request(hold_until_set_up)
