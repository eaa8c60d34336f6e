"""The authorization code grant on Authlib, both halves: the authorization endpoint (validate, decide, issue the code)
and the token endpoint's code exchange, with S256-only PKCE and the OpenID Connect extension. The rules are in
app/oauth/authorize.py; each hook below says which one it applies and why it is that hook."""

import hmac

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidGrantError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope

from app.audit import services as audit
from app.audit.tags import EventTag
from app.clock import now as app_now
from app.extensions import db
from app.oauth import authorize, claims, grants, tokens
from app.oauth.models import AuthorizationCode, OAuthClient, OAuthGrant
from app.oauth.server import CLIENT_AUTH_METHODS
from app.oauth.token_service import GRANT_ENDED, issue
from app.security import identifiers


def _s256_matches(verifier: str, challenge: str) -> bool:
    return hmac.compare_digest(create_s256_code_challenge(verifier), challenge)


class S256CodeChallenge(CodeChallenge):
    """RFC 7636, as DESIGN §5 wants it and Authlib's does not: S256 only (no `plain`, not even as the default), and
    a challenge and verifier required from every client, confidential ones too (Authlib's asks a verifier of public
    clients only, and lets a request without a challenge through)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": _s256_matches}  # compared in constant time

    def validate_code_challenge(self, grant, redirect_uri) -> None:
        """Hook after_validate_authorization_request_payload: authorize.check_code_challenge's rules."""
        authorize.check_code_challenge(grant.request.payload.data)

    def validate_code_verifier(self, grant, result) -> None:
        """Hook after_validate_token_request. Every code has a challenge (the authorization endpoint refuses a
        request without one), so Authlib's check demands the verifier whatever the client; CodeExchange asks for it
        even before the code is looked at. Authlib's pattern is matched with `$`, which also matches before a
        trailing newline: the verifier is checked whole first (RFC 7636 §4.1)."""
        verifier = grant.request.form.get("code_verifier")
        if verifier and not identifiers.is_code_verifier(verifier):
            raise InvalidRequestError("code_verifier must be 43 to 128 unreserved characters.")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge_method(self, authorization_code: AuthorizationCode) -> str:
        return "S256"  # the only method the authorization endpoint accepts


class OpenIDConnectCode(OpenIDCode):
    """OIDC Core §3.1 on Authlib's extension: the nonce checked at the authorization endpoint, the ID token added to
    the code exchange's token response."""

    def exists_nonce(self, nonce: str, request) -> bool:
        """Hook: a nonce is the relying party's defence against replayed ID tokens, checked by it (OIDC Core
        §3.1.3.7 step 11); we keep no index of the nonces clients send, so none "exists" here."""
        return False

    def encode_id_token(self, token: dict, request) -> str:
        """Hook replaced: signed with our rotating keys (kid, typ), `sid` the grant's public id and `auth_time` the
        approving session's (claims.id_token); Authlib's builds its claims from one static key and the user row.
        `request.user` is the grant (CodeExchange.authenticate_user)."""
        return claims.id_token(request.user, app_now(), nonce=request.authorization_code.nonce)

    def __call__(self, grant) -> None:
        """Authlib's registration minus validate_request_prompt: ours (CodeExchange.validate_consent_request) also
        weighs max_age, id_token_hint and stored consent, and applies to plain OAuth requests too."""
        grant.register_hook("after_create_token_response", self.process_token)
        if is_openid_scope(grant.request.payload.scope):
            grant.register_hook(
                "after_validate_authorization_request_payload", self.validate_openid_authorization_request
            )


class CodeExchange(AuthorizationCodeGrant):
    """RFC 6749 §4.1 on Authlib's grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    authorization_request: authorize.AuthorizationRequest

    # The authorization endpoint.

    @classmethod
    def check_authorization_endpoint(cls, request) -> bool:
        """Hook: every authorization request is ours to validate, so that response_type is judged in the order of
        RFC 6749 §4.1.2.1 (client and redirect URI first, as a page) by validate_authorization_request."""
        return True

    @staticmethod
    def validate_no_multiple_request_parameter(request) -> None:
        """Hook: repeated parameters are judged by authorize.parse, after the client and redirect URI, so that they
        go back to the client when it can be trusted with the answer (Authlib's shows every one as a page)."""

    def validate_authorization_request(self) -> str:
        """Hook replaced (Authlib's validate_code_authorization_request): authorize.parse, which keeps our order and
        wording and the RFC 8252 loopback-port rule, then the extensions' checks (PKCE, nonce) as Authlib runs them.
        Returns the redirect URI errors may be sent to."""
        self.authorization_request = authorize.parse(self.request.payload.data)
        self.request.client = self.authorization_request.client
        self.request.scope = self.authorization_request.scope
        redirect_uri = self.authorization_request.redirect_uri
        try:
            self.execute_hook("after_validate_authorization_request_payload", redirect_uri)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def validate_consent_request(self) -> str:
        """Hook: once the request is valid, what to ask the user first (authorize.decide: sign-in, password again,
        consent), in Authlib's `grant.prompt`; prompt=none raises the OIDC error instead."""
        redirect_uri = super().validate_consent_request()
        self.prompt = authorize.decide(self.authorization_request, self.request.user, app_now())
        return redirect_uri

    def create_authorization_response(self, redirect_uri: str, grant_user):
        """Hook: a declined consent is access_denied with our words; Authlib's issues the code otherwise."""
        if not grant_user:
            raise AccessDeniedError("The user declined.", redirect_uri=redirect_uri)
        return super().create_authorization_response(redirect_uri, grant_user)

    def generate_authorization_code(self) -> str:
        return tokens.new_token(tokens.CODE_PREFIX)  # prefixed, as every token of ours (catalogue #31)

    def save_authorization_code(self, code: str, request) -> None:
        """Hook: the code bound to the approving portal session's grant and the client's device id (DESIGN §5);
        `request.user` is the signed-in portal session (the view's grant_user)."""
        consented = self.prompt == authorize.CONSENT  # the consent page, approved: this POST is that approval
        authorize.save_code(self.authorization_request, code, request.user, app_now(), consented)

    # The token endpoint.

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode:
        """Hook: the code row, locked. A used code is a replay: what it issued is revoked (the view commits that
        although the answer is invalid_grant). Any checked presentation burns the code (security-anchors D7): no
        second guess at the verifier."""
        if not self.request.form.get("code_verifier"):
            raise InvalidRequestError("code_verifier is required (PKCE).")  # before the code is looked at
        row = AuthorizationCode.by_code_hash(tokens.digest(code), lock=True)
        if row is None or row.grant.client_id != client.id:
            raise InvalidGrantError("Unknown authorization code.")
        at = app_now()
        if row.used_at is not None:
            _revoke_after_replay(row, at)
            raise InvalidGrantError("This authorization code was already used; what it issued is now revoked.")
        row.used_at = at
        if at > row.expires_at:
            raise InvalidGrantError("The authorization code has expired.")
        return row

    def authenticate_user(self, authorization_code: AuthorizationCode) -> OAuthGrant:
        """Hook: the grant the code belongs to, while it still stands (its portal session too). What Authlib calls
        the user only reaches our generate_token and the ID token; the grant names its user, and loading the row
        would cost a query."""
        if grants.state(authorization_code.grant, app_now()) != grants.ACTIVE:
            raise InvalidGrantError(GRANT_ENDED)
        return authorization_code.grant

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        """Hook: our tokens (a JWT access token, a new refresh chain, and the grant token of DESIGN §6), minted and
        stored by token_service.issue; the ID token follows from OpenIDConnectCode, and Authlib's server.save_token
        has nothing left."""
        code: AuthorizationCode = self.request.authorization_code
        grant = code.grant
        # The grant's token changes before any refresh token references the grant: two exchanges on one grant
        # then queue on the grant row instead of deadlocking (an insert's key-share lock, then a unique update).
        grant_token = grants.issue_grant_token(grant)
        db.session.flush()
        response = issue(grant, code.scope, app_now())
        response.grant_token = grant_token
        return response.body()

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Hook: codes are marked used (query_authorization_code), never deleted, so that a replay can revoke what
        the first use issued; the cleanup command removes them once expired."""


def _revoke_after_replay(code: AuthorizationCode, now) -> None:
    """RFC 6749 §4.1.2: a second use revokes every token issued from the first (ASVS 5.0 10.4.2)."""
    grants.revoke_grants(OAuthGrant.id == code.grant_id, reason=grants.REASON_CODE_REPLAY, now=now)
    audit.record(EventTag.CODE_REPLAY, user_id=code.grant.user_id, grant=code.grant.public_id)
