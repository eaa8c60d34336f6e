"""OAuth 2.0 / OpenID Connect endpoints: each parses, calls one service, and answers."""

from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, url_for

from app.accounts.services import sign_out
from app.clock import now
from app.extensions import csrf, db
from app.oauth import authorize as authz
from app.oauth import discovery, endpoints, keys
from app.oauth import logout as rp_logout
from app.oauth.endpoints import Introspection, Revocation
from app.oauth.scopes import SCOPES
from app.oauth.server import current_server
from app.security.origin import cross_site_allowed
from app.security.ratelimit import limit_failed_client_authentication
from app.web.auth import client_ip, forget_session, json_api, reauthenticate_url

bp = Blueprint("oauth", __name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_json(view):
    """Back-channel endpoints: client-authenticated, callable from anywhere, never cookie-driven, JSON errors."""
    return csrf.exempt(cross_site_allowed(json_api(view)))


def _redirect(location: str):
    """303 after a POST (never 307, which would re-post the form to the app), 302 after a GET."""
    return redirect(location, 303 if request.method == "POST" else 302)


def _with_request(params, then):
    """Parse the authorization request; a bad client or redirect URI is a page, anything else goes back to the app."""
    try:
        auth_request = authz.parse(params)
    except authz.ErrorPage as exc:
        return render_template("oauth/error.html", message=str(exc)), 400
    except authz.ErrorRedirect as exc:
        return _redirect(exc.location)
    return then(auth_request)


def refuse_head() -> None:
    """DESIGN §8: only POST changes state. GET on /oauth/authorize and /oauth/logout is the exception the specs
    require (RFC 6749 §3.1, OIDC RP-Initiated Logout 1.0 §2); Flask answers HEAD with the GET view, and HEAD is
    never allowed to act (RFC 9110 §9.3.2: the same as GET without a body), so it is refused before deciding."""
    if request.method == "HEAD":
        abort(405, valid_methods=["GET", "POST"])


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@csrf.exempt  # OIDC Core §3.1.2.1: relying parties may POST the request; the consent decision has its own token
@cross_site_allowed
def authorize():
    refuse_head()
    params = request.form if request.method == "POST" else request.args
    return _with_request(params, lambda auth_request: _decide(auth_request, params))


def _decide(auth_request: authz.AuthorizationRequest, params):
    decision = authz.decide(auth_request, g.current_session, now())
    carried = authz.carried(params)
    if decision.ask == "consent":
        return render_template("oauth/consent.html", request_=auth_request, params=carried, scopes=SCOPES)
    if decision.ask:
        next_url = url_for("oauth.authorize") + "?" + urlencode(carried)
        if decision.ask == "reauthenticate":
            return redirect(reauthenticate_url(next_url))
        return redirect(url_for("accounts.login", next=next_url))
    db.session.commit()
    assert decision.location is not None  # a decision either asks the user or answers the client
    return _redirect(decision.location)


@bp.post("/oauth/consent")
def consent():
    return _with_request(request.form, _answer_consent)


def _answer_consent(auth_request: authz.AuthorizationRequest):
    if g.current_session is None:
        return redirect(url_for("accounts.login"), 303)
    approved = request.form.get("decision") == "approve"
    location = authz.answer_consent(auth_request, g.current_session, approved, now())
    db.session.commit()
    return _redirect(location)


def _single_valued(form) -> None:
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    repeated = sorted(name for name in form if len(form.getlist(name)) > 1)
    if repeated:
        raise InvalidRequestError(f"Repeated parameter: {', '.join(repeated)}.")


def _committed(response):
    """The one commit of an endpoint Authlib answered, an error too: a revocation decided while failing (code replay,
    refresh reuse), or a portal session found expired, must stand."""
    db.session.commit()
    return response


@bp.post("/oauth/token")
@_oauth_json
@limit_failed_client_authentication
def token():
    try:
        _single_valued(request.form)
    except OAuth2Error as exc:
        return current_server().handle_error_response(None, exc)
    return _committed(current_server().create_token_response())


@bp.post("/oauth/revoke")
@_oauth_json
@limit_failed_client_authentication
def revoke():
    return _committed(current_server().create_endpoint_response(Revocation.ENDPOINT_NAME))


@bp.post("/oauth/introspect")
@_oauth_json
@limit_failed_client_authentication
def introspect():
    return _committed(current_server().create_endpoint_response(Introspection.ENDPOINT_NAME))


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@_oauth_json
def userinfo():
    try:
        body = endpoints.userinfo(request.headers.get("Authorization"), now())
    except endpoints.MissingToken:
        description = "Send the access token in the Authorization header as a Bearer token."
        return jsonify(error="invalid_request", error_description=description), 401, {"WWW-Authenticate": "Bearer"}
    except endpoints.InvalidToken as exc:
        challenge = f'Bearer error="invalid_token", error_description="{exc}"'
        db.session.commit()  # a portal session found expired has just ended
        return jsonify(error="invalid_token", error_description=str(exc)), 401, {"WWW-Authenticate": challenge}
    return jsonify(body), 200, NO_STORE


@bp.route("/oauth/logout", methods=["GET", "POST"])
@csrf.exempt  # the request comes from the relying party; signing out without a valid hint needs a click
@cross_site_allowed
def logout():
    refuse_head()
    params = request.form if request.method == "POST" else request.args
    try:
        decision = rp_logout.plan(
            params.get("id_token_hint"), params.get("client_id") or None,  # RFC 6749 §3.1: empty is omitted
            params.get("post_logout_redirect_uri"), params.get("state"), g.current_session, now(),
        )  # fmt: skip
    except rp_logout.LogoutRefused as refused:
        return render_template("oauth/logout_refused.html", message=str(refused)), 400
    if decision.redirect_to is None:
        return render_template("oauth/logout.html", client_name=decision.client_name)
    if decision.sign_out:
        sign_out(g.current_session.id, now(), ip=client_ip())
        db.session.commit()
        forget_session()
    return redirect(decision.redirect_to, 303)


@bp.get("/oauth/jwks")
def jwks():
    body = keys.jwks(now())
    db.session.commit()  # the first call creates the first key
    return jsonify(body), 200, {"Cache-Control": "public, max-age=300"}


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    return jsonify(discovery.metadata(openid=True)), 200, {"Cache-Control": "public, max-age=3600"}


@bp.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata():
    return jsonify(discovery.metadata(openid=False)), 200, {"Cache-Control": "public, max-age=3600"}
