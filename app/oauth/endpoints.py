"""RFC 7009 revocation, RFC 7662 introspection, and userinfo on Authlib's endpoints: tokens judged by their grant's
state."""

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientAuthentication, InvalidRequestError, TokenMixin
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError, InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfoEndpoint
from flask import current_app

from app.clock import now
from app.oauth import claims, clients, grants, keys, standing, tokens
from app.oauth.errors import refuse_repeated
from app.oauth.models import OAuthClient, OAuthGrant, RefreshToken
from app.oauth.server import (
    CLIENT_AUTH_METHODS,
    authenticate_client_secret_basic,
    authenticate_client_secret_post,
    authenticate_none,
)

ACCESS_TOKEN_CLAIMS = ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "sid")
VERIFIED_TOKENS_KEY = "gatehouse.verified_access_tokens"
VERIFIED_TOKENS_KEPT = 10_000


def live_grant(grant: OAuthGrant | None, now: datetime) -> bool:
    """Its client still enabled (disabling revokes the grants too, this holds between) and the grant standing."""
    return grant is not None and grant.client.disabled_at is None and grants.state(grant, now) == grants.ACTIVE


@dataclass
class PresentedToken(TokenMixin):
    """A token as RFC 7009 / RFC 7662 see it (Authlib's TokenMixin, the part they use): the client it was issued
    to, its grant when it has one, and what introspection answers about it."""

    client_id: str
    grant: OAuthGrant | None
    at: datetime
    payload: dict = field(default_factory=dict)
    ended: bool = False  # rotated, revoked or expired on its own row (a refresh token)
    stands: bool | None = None  # its grant's standing, when already known (app/oauth/standing)

    def check_client(self, client: OAuthClient | clients.ClientIdentity) -> bool:
        return client.client_id == self.client_id

    def is_expired(self) -> bool:
        return self.ended

    def is_revoked(self) -> bool:
        """Judged by its grant (access tokens are stateless JWTs); asked only once the client may see the token."""
        if self.stands is not None:
            return not self.stands
        return self.grant is not None and not live_grant(self.grant, self.at)


def _check_token_param(request) -> None:
    """Authlib's check_params, with RFC 7009 §2.1 / RFC 7662 §2.1 read our way: the hint only speeds up a lookup,
    which the token's prefix already does, so an unknown hint is ignored rather than refused; RFC 6749 §3.2: no
    parameter twice."""
    form = request.form
    refuse_repeated(form)
    if not form.get("token"):
        raise InvalidRequestError("token is required.")


def _access_token(value: str, at: datetime) -> dict | None:
    """The claims of one of our access tokens, or None. A token this process has verified before is not verified
    again (an RSA signature check): it is still refused once expired, or once the key that signed it is no longer
    published (keys.jwks, read as keys.verify reads them)."""
    verified = current_app.extensions.setdefault(VERIFIED_TOKENS_KEY, {})
    known = verified.get(value)
    if known is not None:
        body, kid = known
        if body["exp"] >= int(at.timestamp()) and any(key["kid"] == kid for key in keys.jwks(at)["keys"]):
            return body
        return None
    try:
        body = keys.verify(value, claims.ACCESS_TOKEN_TYP, at)  # an ID token's typ is refused
    except keys.InvalidJWT:
        return None
    if len(verified) >= VERIFIED_TOKENS_KEPT:
        verified.clear()
    verified[value] = (body, _kid(value))
    return body


def _kid(verified_token: str) -> str:
    """The key id in the protected header of a token whose signature has been checked."""
    header = verified_token.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh, grant or access token ends its grant: access tokens are stateless JWTs, so
    their grant is what can be revoked, and every token of that grant stops working with it."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def check_params(self, request, client) -> None:
        _check_token_param(request)

    def authenticate_token(self, request, client) -> PresentedToken | None:
        """Hook replaced: RFC 7009 §2.2, another client's token gets the same quiet 200 as an unknown one (Authlib
        answers invalid_grant, which would tell a client that the token exists)."""
        self.check_params(request, client)
        form = request.form
        token = self.query_token(form["token"], form.get("token_type_hint"))
        return token if token is not None and token.check_client(client) else None

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        """Hook: the grant the token belongs to, found by the token's prefix."""
        at = now()
        if token_string.startswith(tokens.REFRESH_PREFIX):
            row = RefreshToken.by_token_hash(tokens.digest(token_string))
            grant = row.grant if row else None
        elif token_string.startswith(tokens.GRANT_PREFIX):
            grant = OAuthGrant.by_token_hash(tokens.digest(token_string))
        else:
            body = _access_token(token_string, at) or {}
            grant = OAuthGrant.by_public_id(body["sid"]) if "sid" in body else None
        return PresentedToken(grant.client.client_id, grant, at) if grant is not None else None

    def revoke_token(self, token: PresentedToken, request) -> None:
        """Hook: the whole grant ends (its refresh chain, cached checks, back-channel logouts), recorded as the
        client's doing; the view commits."""
        if token.grant is not None:
            grants.revoke_grants(OAuthGrant.id == token.grant.id, reason=grants.REASON_REVOKED_BY_CLIENT, now=token.at)


class Introspection(IntrospectionEndpoint):
    """RFC 7662: exactly {"active": false} for anything revoked, expired, unknown or another client's. The client
    and an access token's grant are read through the cache (a warm introspection reads no database)."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def authenticate_endpoint_client(self, request) -> clients.ClientIdentity:
        """Hook replaced: the server's own client authentication methods, given the cached client identity
        (clients.enabled_identity) instead of the client's row, which nothing here writes to."""
        client = CACHED_CLIENT_AUTHENTICATION(request, self.CLIENT_AUTH_METHODS, self.ENDPOINT_NAME)
        request.client = client
        return client

    def check_params(self, request, client) -> None:
        _check_token_param(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        """Hook: a refresh token by its digest, anything else must be one of our access-token JWTs."""
        at = now()
        if token_string.startswith(tokens.REFRESH_PREFIX):
            return self._refresh_token(RefreshToken.by_token_hash(tokens.digest(token_string)), at)
        body = _access_token(token_string, at)
        if body is None:
            return None
        payload = {"token_type": "Bearer"} | {k: body[k] for k in ACCESS_TOKEN_CLAIMS if k in body}
        if "sid" not in body:
            return PresentedToken(body.get("client_id", ""), None, at, payload)
        found = standing.by_public_id(body["sid"], at)
        if found is None:
            return None
        return PresentedToken(body.get("client_id", ""), None, at, payload, stands=standing.stands(found, at))

    @staticmethod
    def _refresh_token(row: RefreshToken | None, at: datetime) -> PresentedToken | None:
        if row is None:
            return None
        grant = row.grant
        payload = {"token_type": "refresh_token", "scope": row.scope, "client_id": grant.client.client_id,
                   "sub": claims.subject(grant.user_id), "exp": int(row.expires_at.timestamp()),
                   "sid": grant.public_id}  # fmt: skip
        ended = bool(row.revoked_at or row.rotated_at) or at > row.expires_at
        return PresentedToken(grant.client.client_id, grant, at, payload, ended)

    def check_permission(self, token: PresentedToken, client: clients.ClientIdentity, request) -> bool:
        """Hook: a client may introspect only its own tokens; another's reads as inactive (RFC 7662 §2.2)."""
        return token.check_client(client)

    def introspect_token(self, token: PresentedToken) -> dict:
        """Hook: reached once the token is the client's, unexpired, and its grant live (grants.state)."""
        return {"active": True, **token.payload}


class AccessToken(TokenMixin):
    """An access token as Authlib's resource protector and UserInfoEndpoint see it (TokenMixin, the part they use):
    its claims, and the grant that must still stand, which also stands for the user (claims.userinfo reads it)."""

    def __init__(self, claims: dict, grant: OAuthGrant | None, at: datetime):
        self.claims, self.grant, self.at = claims, grant, at
        self.scope = claims.get("scope", "")

    def get_client(self) -> OAuthClient | None:
        return self.grant.client if self.grant else None

    def get_user(self) -> OAuthGrant | None:
        return self.grant

    def is_revoked(self) -> bool:
        return not live_grant(self.grant, self.at)


class MissingBearerToken(OAuth2Error):
    """RFC 6750 §3.1: a request without a bearer token is answered with a bare challenge, no error code in it (Authlib's
    MissingAuthorizationError and UnsupportedTokenTypeError name one)."""

    error = "invalid_request"
    description = "Send the access token in the Authorization header as a Bearer token."
    status_code = 401

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", "Bearer")]


class BearerTokens(ResourceProtector):
    def parse_request_authorization(self, request):
        """Hook: only "Bearer <token>" reaches the validator; anything else is a missing token (MissingBearerToken)."""
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingBearerToken()
        return self.get_token_validator("bearer"), token.strip()


class AccessTokenValidator(BearerTokenValidator):
    """RFC 9068 access tokens, validated by keys.verify (our rotating keys, typ at+jwt, so an ID token is refused, iss
    and exp); Authlib's JWTBearerTokenValidator expects one fixed audience, and ours name the client they were issued
    to. Then the grant behind the token must still stand (grants.state): a JWT alone cannot be revoked."""

    def authenticate_token(self, token_string: str) -> AccessToken:
        at = now()
        body = _access_token(token_string, at)
        if body is None:
            raise InvalidTokenError("The access token is not valid.")
        return AccessToken(body, OAuthGrant.by_public_id(body.get("sid", "")), at)

    def validate_token(self, token: AccessToken, scopes, request) -> None:
        if token.is_revoked():
            raise InvalidTokenError("The access token is no longer valid.")
        if self.scope_insufficient(token.scope, scopes):
            raise InsufficientScopeError()


class UserInfo(UserInfoEndpoint):
    """OIDC Core §5.3 on Authlib's endpoint: the claims the token's scopes allow (claims.userinfo), always as JSON
    (no client is registered for signed userinfo)."""

    def generate_user_info(self, user: OAuthGrant, scope: str) -> dict:
        return claims.userinfo(user, scope)


def userinfo_endpoint() -> UserInfo:
    protector = BearerTokens()
    protector.register_token_validator(AccessTokenValidator())
    return UserInfo(resource_protector=protector)


def _cached_client_authentication() -> ClientAuthentication:
    authentication = ClientAuthentication(clients.enabled_identity)
    for method, authenticate in (("client_secret_basic", authenticate_client_secret_basic),
                                 ("client_secret_post", authenticate_client_secret_post),
                                 ("none", authenticate_none)):  # fmt: skip
        authentication.register(method, authenticate)
    return authentication


CACHED_CLIENT_AUTHENTICATION = _cached_client_authentication()
