"""The token endpoint's rules: code exchange, refresh rotation with reuse detection, client credentials."""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, ClientCredentialsGrant
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from flask import current_app
from sqlalchemy import update

from app.accounts.models import User
from app.audit import services as audit
from app.audit.tags import EventTag
from app.clock import now as app_now
from app.extensions import db
from app.oauth import claims, grants, tokens
from app.oauth.clients import GRANT_REFRESH
from app.oauth.errors import OAuthError, invalid_grant, invalid_request
from app.oauth.models import AuthorizationCode, OAuthClient, OAuthGrant, RefreshToken
from app.oauth.server import CLIENT_AUTH_METHODS
from app.security import identifiers

GRANT_ENDED = "The grant has been revoked or has expired, or its portal session has ended."


@dataclass
class TokenResponse:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    grant_token: str | None = None

    def body(self) -> dict:
        body = {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in,
                "scope": self.scope}  # fmt: skip
        for name in ("refresh_token", "id_token", "grant_token"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        return body


def exchange(client: OAuthClient, form, now: datetime) -> TokenResponse:
    """The grant still ours: refresh (rotation with reuse detection); the code exchange and client credentials are
    CodeExchange and ClientCredentials on Authlib's server."""
    grant_type = form.get("grant_type")
    if grant_type != GRANT_REFRESH:
        raise OAuthError("unsupported_grant_type", "Supported: authorization_code, refresh_token, client_credentials.")
    if grant_type not in client.grant_types:
        raise OAuthError("unauthorized_client", f"This client may not use {grant_type}.")
    return refresh(client, form, now)


def _s256_matches(verifier: str, challenge: str) -> bool:
    return hmac.compare_digest(create_s256_code_challenge(verifier), challenge)


class S256CodeChallenge(CodeChallenge):
    """RFC 7636, as DESIGN §5 wants it and Authlib's does not: S256 only (no `plain`, not even as the default), and
    a verifier required from every client, confidential ones too (Authlib requires one from public clients only)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": _s256_matches}  # compared in constant time

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


class CodeExchange(AuthorizationCodeGrant):
    """RFC 6749 §4.1.3 on Authlib's grant; the authorization endpoint that issues the codes is still ours
    (app/oauth/authorize.py)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

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

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User:
        """Hook: the user, while the grant the code belongs to still stands (its portal session too)."""
        if grants.state(authorization_code.grant, app_now()) != grants.ACTIVE:
            raise InvalidGrantError(GRANT_ENDED)
        return authorization_code.grant.user

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        """Hook: our tokens (a JWT access token, a new refresh chain, the ID token with sid and nonce, and the
        grant token of DESIGN §6), minted and stored by _issue; Authlib's server.save_token has nothing left."""
        return redeem_code(self.request.authorization_code, app_now()).body()

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Hook: codes are marked used (query_authorization_code), never deleted, so that a replay can revoke what
        the first use issued; the cleanup command removes them once expired."""


def redeem_code(code: AuthorizationCode, now: datetime) -> TokenResponse:
    grant = code.grant
    # The grant's token changes before any refresh token references the grant: two exchanges on one grant
    # then queue on the grant row instead of deadlocking (an insert's key-share lock, then a unique update).
    grant_token = grants.issue_grant_token(grant)
    db.session.flush()
    response = _issue(grant, code.scope, now, nonce=code.nonce)
    response.grant_token = grant_token
    return response


def _revoke_after_replay(code: AuthorizationCode, now: datetime) -> None:
    """RFC 6749 §4.1.2: a second use revokes every token issued from the first (ASVS 5.0 10.4.2)."""
    grants.revoke_grants(OAuthGrant.id == code.grant_id, reason=grants.REASON_CODE_REPLAY, now=now)
    audit.record(EventTag.CODE_REPLAY, user_id=code.grant.user_id, grant=code.grant.public_id)


def _check_grant_live(grant: OAuthGrant, now: datetime) -> None:
    if grants.state(grant, now) != grants.ACTIVE:
        raise invalid_grant(GRANT_ENDED)


def refresh(client: OAuthClient, form, now: datetime) -> TokenResponse:
    presented = form.get("refresh_token")
    if not presented:
        raise invalid_request("refresh_token is required.")
    token = RefreshToken.by_token_hash(tokens.digest(presented), lock=True)
    if token is None or token.grant.client_id != client.id:
        raise invalid_grant("Unknown refresh token.")
    if token.revoked_at is not None:
        raise invalid_grant("This refresh token has been revoked.")
    if token.rotated_at is not None:  # rotated_to may be gone (cleanup deleted the successor): still rotated
        return _refresh_again(token, presented, now)
    _check_grant_live(token.grant, now)
    if now > token.expires_at:
        raise invalid_grant("This refresh token has expired.")
    scope = _narrowed_scope(token.scope, form.get("scope"))
    return _issue(token.grant, scope, now, predecessor=(token, presented))


def _refresh_again(token: RefreshToken, presented: str, now: datetime) -> TokenResponse:
    """A rotated token again: inside the grace window, only the immediate predecessor of the live token
    gets that same successor (concurrent tabs, retries); anything else is reuse, i.e. theft."""
    successor = db.session.get(RefreshToken, token.rotated_to) if token.rotated_to else None
    grace = timedelta(seconds=current_app.config["REFRESH_GRACE_SECONDS"])
    in_grace = grace and now - token.rotated_at <= grace
    if not (in_grace and successor and successor.rotated_at is None and successor.revoked_at is None):
        grants.revoke_chain_for_reuse(token, now)
        raise invalid_grant("This refresh token was already used; the session it belongs to has been revoked.")
    _check_grant_live(token.grant, now)
    return _token_response(token.grant, successor.scope, now, refresh_token=tokens.successor_of(presented))


def _narrowed_scope(original: str, requested: str | None) -> str:
    if not requested:
        return original
    if not set(requested.split()) <= set(original.split()):
        raise OAuthError("invalid_scope", "A refresh cannot widen the scope.")
    return " ".join(dict.fromkeys(requested.split()))


def _issue(grant: OAuthGrant, scope: str, now: datetime, *, nonce=None, predecessor=None):
    """Mint the next refresh token (a new chain after a code; the derived successor after a refresh)."""
    if predecessor:
        old, presented = predecessor
        value, chain = tokens.successor_of(presented), old.chain_id
    else:
        value, chain = tokens.new_token(tokens.REFRESH_PREFIX), secrets.token_hex(16)
    lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"])
    row = RefreshToken(token_hash=tokens.digest(value), grant_id=grant.id, chain_id=chain, scope=scope,
                       created_at=now, expires_at=min(now + lifetime, grant.expires_at))  # fmt: skip
    db.session.add(row)
    db.session.flush()
    if predecessor:
        # Compare-and-set: of two racing rotations only one may mark the predecessor (never two live tokens).
        marked = db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == old.id, RefreshToken.rotated_at.is_(None))
            .values(rotated_to=row.id, rotated_at=now, last_used_at=now)
        )
        if marked.rowcount != 1:
            raise OAuthError("temporarily_unavailable", "Concurrent refresh; retry.", 503)
        grant.last_refreshed_at = now
    return _token_response(grant, scope, now, refresh_token=value, nonce=nonce)


def _token_response(grant: OAuthGrant, scope: str, now: datetime, *, refresh_token: str, nonce=None):
    ttl = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
    response = TokenResponse(claims.access_token(grant, scope, now), ttl, scope, refresh_token=refresh_token)
    if "openid" in scope.split():
        response.id_token = claims.id_token(grant, now, nonce=nonce)
    return response


class ClientCredentials(ClientCredentialsGrant):
    """RFC 6749 §4.4 on Authlib's grant, for machine clients registered with it (never public ones: registration
    refuses that, and a client without the grant type gets Authlib's unauthorized_client)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        """Hook: a JWT access token naming the client itself (RFC 9068), and no refresh token."""
        ttl = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
        return TokenResponse(claims.client_access_token(self.request.client, app_now()), ttl, "").body()
