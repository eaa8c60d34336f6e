"""The provider's Authlib AuthorizationServer: clients found through `clients.find`, our client authentication
registered in place of Authlib's, the grants (app/oauth/code_grant.py: the authorization code with S256-only PKCE and
OpenID Connect; app/oauth/token_service.py: refresh rotation, client credentials), RFC 9207 `iss`, and the endpoints
(app/oauth/endpoints.py: RFC 7009, RFC 7662, userinfo, RP-initiated logout) on it."""

import functools
import logging

from authlib.consts import default_json_headers
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, UnsupportedGrantTypeError
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, current_app
from flask import request as flask_request
from werkzeug.sansio.utils import get_current_url

from app.oauth import clients
from app.oauth.errors import OAuthError
from app.oauth.models import OAuthClient
from app.oauth.scopes import SCOPES

SERVER_EXTENSION_KEY = "gatehouse.oauth_server"
# Authlib's grants log each issued token at DEBUG ("Issue token %r to %r"); catalogue #32: no token value in any log,
# whatever level the app runs at.
TOKEN_LOGGING_GRANTS = "authlib.oauth2.rfc6749.grants"
# RFC 6749 §2.3: every endpoint that authenticates clients accepts these, exactly one per request.
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
SUPPORTED_GRANTS = "Supported: authorization_code, refresh_token, client_credentials."


class ClientAuthenticationFailed(InvalidClientError):
    """RFC 6749 §5.2 invalid_client, always 401; the Basic challenge only when the client used the Authorization
    header (Authlib's own adds one to every 401 and repeats the description in it)."""

    status_code = 401

    def __init__(self, description: str = "Client authentication failed.", *, basic: bool = False):
        super().__init__(description=description, status_code=401)
        self.basic = basic

    def get_headers(self):
        headers = default_json_headers[:]
        if self.basic:
            headers.append(("WWW-Authenticate", 'Basic realm="gatehouse"'))
        return headers


class Server(AuthorizationServer):
    def create_oauth2_request(self, request) -> FlaskOAuth2Request:
        """Authlib's, given the request itself rather than Flask's proxy to it: every attribute Authlib and our hooks
        read (the form alone some seven times a request) would otherwise be looked up through the proxy again. Like
        Authlib's, it reads the current request whatever it is passed."""
        current = flask_request._get_current_object()  # type: ignore[attr-defined]
        if not current.query_string:  # every back-channel request: its URL is werkzeug's, remembered (_url)
            current.url = _url(current.scheme, current.host, current.root_path, current.path)
        return FlaskOAuth2Request(current)

    def get_token_grant(self, request):
        """RFC 6749 §5.2 in our order: a request with no grant_type we have (or no form at all) is invalid_client
        unless its client authenticates, and only then unsupported_grant_type (Authlib judges the grant first)."""
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as exc:
            self.authenticate_client(request, CLIENT_AUTH_METHODS)
            exc.description = SUPPORTED_GRANTS  # Authlib's body has none
            raise

    def create_token_response(self, request=None):
        try:
            return super().create_token_response(request)
        except OAuth2Error as error:  # get_token_grant's invalid_client, where Authlib expects only the grant's error
            return self.handle_error_response(None, error)

    def create_authorization_error_response(self, error: OAuth2Error):
        """An error found while validating an authorization request (get_consent_grant), sent back to the client as
        create_authorization_response sends its own: through the same hooks, so RFC 9207's `iss` is added."""
        response = self.handle_error_response(None, error)
        self.execute_hook("after_create_authorization_response", response)
        return response


@functools.lru_cache(maxsize=64)
def _url(scheme: str, host: str, root_path: str, path: str) -> str:
    """werkzeug's Request.url of a request without a query string, the string it would compute (quoted, then read back
    as an IRI): Authlib reads it for every request (to refuse plain HTTP), and it is the same for each endpoint and
    host, so it is made once per process rather than on every request (a twentieth of an introspection's CPU)."""
    return get_current_url(scheme, host, root_path, path)


class Issuer(IssuerParameter):
    """RFC 9207: every authorization response, errors included, names its issuer."""

    def get_issuer(self) -> str:
        return current_app.config["ISSUER"]


def query_client(client_id: str) -> OAuthClient | None:
    """Authlib's query_client: through `clients.find`, so a malformed id never reaches a query (DESIGN §8); a
    disabled client reads as unknown, so it is refused at every endpoint from the moment the change commits."""
    client = clients.find(client_id)
    return client if client is not None and client.disabled_at is None else None


def save_token(token: dict, request) -> None:
    """Authlib's save_token. Tokens are stored where token_service mints them: a refresh token's row must be written
    in the same locked transaction that marks its predecessor rotated (DESIGN §5), and access tokens are stateless
    JWTs (RFC 9068). Nothing is left for Authlib to save."""


def _basic_used(request) -> bool:
    header = request.headers.get("Authorization") or ""
    return header.lower().startswith("basic ")


def authenticate_client_secret_basic(query_client, request) -> OAuthClient | None:
    """Replaces Authlib's: RFC 6749 §2.3.1 form-decoding of both parts ('+' is a space), a malformed header or a
    wrong secret is a 401 with the Basic challenge, and a second method alongside is refused."""
    if not _basic_used(request):
        return None
    try:
        credentials = clients.basic_credentials(request.headers["Authorization"])
    except OAuthError as exc:
        raise ClientAuthenticationFailed(exc.description, basic=True) from exc
    if credentials is None:  # _basic_used saw a Basic header, so this does not happen
        return None
    client_id, secret = credentials
    form = request.form
    posted_id = form.get("client_id")
    if form.get("client_secret") is not None or (posted_id and posted_id != client_id):
        raise InvalidRequestError("Use one client authentication method.")
    client = query_client(client_id)
    if client is None or not client.check_client_secret(secret):
        raise ClientAuthenticationFailed(basic=True)
    return client


def authenticate_client_secret_post(query_client, request) -> OAuthClient | None:
    """Replaces Authlib's: an unknown client is a 401 as with Basic (Authlib's answers 400), and a public client
    presenting a secret is refused rather than tried as `none`."""
    form = request.form
    secret = form.get("client_secret")
    if _basic_used(request) or secret is None:
        return None
    client = query_client(form.get("client_id"))
    if client is not None and client.is_public:
        raise ClientAuthenticationFailed("A public client has no secret.")
    if client is None or not client.check_client_secret(secret):
        raise ClientAuthenticationFailed()
    return client


def authenticate_none(query_client, request) -> OAuthClient:
    """Replaces Authlib's, and comes last: a public client names itself in the form (never the query string), and
    whatever no method accepted is our one 401."""
    client = None
    form = request.form
    if not _basic_used(request) and form.get("client_secret") is None:
        client = query_client(form.get("client_id"))
    if client is None or not client.is_public:
        raise ClientAuthenticationFailed()
    return client


def init_server(app: Flask) -> None:
    """One AuthorizationServer per app, kept in app.extensions (tests build several apps in one process)."""
    from app.oauth.code_grant import CodeExchange, OpenIDConnectCode, S256CodeChallenge
    from app.oauth.endpoints import Introspection, Revocation, userinfo_endpoint
    from app.oauth.logout import EndSession
    from app.oauth.token_service import ClientCredentials, Refresh

    server = Server()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.scopes_supported = list(SCOPES)
    server.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    server.register_client_auth_method("client_secret_post", authenticate_client_secret_post)
    server.register_client_auth_method("none", authenticate_none)
    server.register_grant(CodeExchange, [S256CodeChallenge(required=True), OpenIDConnectCode(require_nonce=False)])
    server.register_extension(Issuer())
    server.register_grant(Refresh)
    server.register_grant(ClientCredentials)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_endpoint(userinfo_endpoint())
    server.register_endpoint(EndSession)
    app.extensions[SERVER_EXTENSION_KEY] = server
    logging.getLogger(TOKEN_LOGGING_GRANTS).setLevel(logging.INFO)


def current_server() -> Server:
    return current_app.extensions[SERVER_EXTENSION_KEY]
