"""OAuth 2.0 / OpenID Connect endpoints: each parses, calls one service, and answers."""

from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, url_for

from app.clock import now
from app.extensions import csrf, db
from app.oauth import authorize as authz
from app.oauth import discovery, keys
from app.oauth.endpoints import Introspection, Revocation, UserInfo
from app.oauth.errors import refuse_repeated
from app.oauth.logout import EndSession
from app.oauth.scopes import SCOPES
from app.oauth.server import current_server
from app.security.origin import cross_site_allowed
from app.security.ratelimit import limit_failed_client_authentication
from app.web.auth import json_api, reauthenticate_url

bp = Blueprint("oauth", __name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_json(view):
    """Back-channel endpoints: client-authenticated, callable from anywhere, never cookie-driven, JSON errors."""
    return csrf.exempt(cross_site_allowed(json_api(view)))


def _redirect(location: str):
    """303 after a POST (never 307, which would re-post the form to the app), 302 after a GET."""
    return redirect(location, 303 if request.method == "POST" else 302)


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
    server = current_server()
    try:
        grant = server.get_consent_grant(end_user=g.current_session)
    except OAuth2Error as error:
        return _authorization_error(server, error)
    carried = authz.carried(request.values)
    if grant.prompt == authz.CONSENT:
        return render_template("oauth/consent.html", request_=grant.authorization_request, params=carried,
                               scopes=SCOPES)  # fmt: skip
    if grant.prompt:
        next_url = url_for("oauth.authorize") + "?" + urlencode(carried)
        if grant.prompt == authz.REAUTHENTICATE:
            return redirect(reauthenticate_url(next_url))
        return redirect(url_for("accounts.login", next=next_url))
    return _authorization_response(server.create_authorization_response(grant=grant, grant_user=g.current_session))


@bp.post("/oauth/consent")
def consent():
    server = current_server()
    try:
        grant = server.get_consent_grant(end_user=g.current_session)
    except OAuth2Error as error:
        return _authorization_error(server, error)
    if g.current_session is None:
        return redirect(url_for("accounts.login"), 303)
    approved = request.form.get("decision") == "approve"
    user = g.current_session if approved else None
    return _authorization_response(server.create_authorization_response(grant=grant, grant_user=user))


def _authorization_error(server, error: OAuth2Error):
    """RFC 6749 §4.1.2.1: an error is sent back to the client only once its redirect URI is known to be its own;
    before that it is a page."""
    if error.redirect_uri is None:
        return render_template("oauth/error.html", message=error.description), 400
    return _authorization_response(server.create_authorization_error_response(error))


def _authorization_response(response):
    """The one commit (the code and its grant, or a portal session found expired); 303 after a POST (never 307,
    which would re-post the form to the app), Authlib's 302 after a GET."""
    db.session.commit()
    if request.method == "POST" and response.status_code == 302:
        response.status_code = 303
    return response


def _committed(response):
    """The one commit of an endpoint Authlib answered, an error too: a revocation decided while failing (code replay,
    refresh reuse), or a portal session found expired, must stand. A request that touched no database (a warm
    introspection, answered from the cache) has nothing to commit, and makes no session to commit nothing."""
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()
    return response


@bp.post("/oauth/token")
@_oauth_json
@limit_failed_client_authentication
def token():
    try:
        refuse_repeated(request.form)
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
    return _committed(current_server().create_endpoint_response(UserInfo.ENDPOINT_NAME))


@bp.route("/oauth/logout", methods=["GET", "POST"])
@csrf.exempt  # the request comes from the relying party; signing out without a valid hint needs a click
@cross_site_allowed
def logout():
    refuse_head()
    server = current_server()
    try:
        end_session_request = server.validate_endpoint_request(EndSession.ENDPOINT_NAME)
    except OAuth2Error as refused:
        return render_template("oauth/logout_refused.html", message=refused.description), 400
    if end_session_request.redirect_uri is None:
        client = end_session_request.client if end_session_request.id_token_claims else None
        return render_template("oauth/logout.html", client_name=client.name if client else None)
    response = _committed(server.create_endpoint_response(EndSession.ENDPOINT_NAME, end_session_request))
    response.status_code = 303  # a redirect after signing out, never repeated as a POST
    return response


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
