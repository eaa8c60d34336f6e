"""The token endpoint's grants on Authlib: code exchange, refresh rotation with reuse detection, client credentials."""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from flask import current_app
from sqlalchemy import update

from app.audit import services as audit
from app.audit.tags import EventTag
from app.clock import now as app_now
from app.extensions import db, rows_changed
from app.oauth import claims, grants, tokens
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

    def authenticate_user(self, authorization_code: AuthorizationCode) -> OAuthGrant:
        """Hook: the grant the code belongs to, while it still stands (its portal session too). What Authlib calls
        the user only reaches our generate_token; the grant names its user, and loading the row would cost a query."""
        if grants.state(authorization_code.grant, app_now()) != grants.ACTIVE:
            raise InvalidGrantError(GRANT_ENDED)
        return authorization_code.grant

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


class TemporarilyUnavailable(OAuth2Error):
    """RFC 6749 §5.2 has no code for it; 503 temporarily_unavailable as at the authorization endpoint (§4.1.2.1)."""

    error = "temporarily_unavailable"
    status_code = 503


@dataclass(frozen=True)
class PresentedRefreshToken:
    """Authlib's refresh-token object: the locked row, the value presented (its successor derives from it), and
    the successor it already has when this is a retry inside the grace window."""

    row: RefreshToken
    value: str
    successor: RefreshToken | None = None

    def check_client(self, client: OAuthClient) -> bool:
        return self.row.grant.client_id == client.id

    def get_scope(self) -> str:
        return self.successor.scope if self.successor else self.row.scope


class Refresh(RefreshTokenGrant):
    """RFC 6749 §6 on Authlib's grant, with DESIGN §5's rotation, which Authlib's does not do: atomic (row lock),
    reuse revokes the chain and the grant, and a retry inside the grace window gets the *same* successor."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def authenticate_refresh_token(self, refresh_token: str) -> PresentedRefreshToken:
        """Hook: the row, locked (SELECT … FOR UPDATE / an immediate transaction) so that two refreshes of one token
        queue. A rotated token again is a grace-window retry, or reuse: the chain and its grant are revoked, and
        the view commits that although the answer is invalid_grant."""
        row = RefreshToken.by_token_hash(tokens.digest(refresh_token), lock=True)
        if row is None or row.grant.client_id != self.request.client.id:
            raise InvalidGrantError("Unknown refresh token.")
        if row.revoked_at is not None:
            raise InvalidGrantError("This refresh token has been revoked.")
        at = app_now()
        if row.rotated_at is not None:  # rotated_to may be gone (cleanup deleted the successor): still rotated
            return PresentedRefreshToken(row, refresh_token, self._successor_in_grace(row, at))
        if at > row.expires_at:
            raise InvalidGrantError("This refresh token has expired.")
        return PresentedRefreshToken(row, refresh_token)

    @staticmethod
    def _successor_in_grace(row: RefreshToken, at: datetime) -> RefreshToken:
        """Only the immediate predecessor of the live token, inside the window (concurrent tabs, retries)."""
        successor = db.session.get(RefreshToken, row.rotated_to) if row.rotated_to else None
        grace = timedelta(seconds=current_app.config["REFRESH_GRACE_SECONDS"])
        in_grace = grace and row.rotated_at is not None and at - row.rotated_at <= grace
        if not (in_grace and successor and successor.rotated_at is None and successor.revoked_at is None):
            grants.revoke_chain_for_reuse(row, at)
            raise InvalidGrantError("This refresh token was already used; the session it belongs to has been revoked.")
        return successor

    def authenticate_user(self, refresh_token: PresentedRefreshToken) -> OAuthGrant:
        """Hook: the token's grant while it still stands (its portal session too); as in CodeExchange, it stands for
        the user, whose row no token needs."""
        grant = refresh_token.row.grant
        if grants.state(grant, app_now()) != grants.ACTIVE:
            raise InvalidGrantError(GRANT_ENDED)
        return grant

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        """Hook: the successor derived from the presented value (an HMAC), so a grace-window retry gets the same one;
        a first rotation stores it and marks the predecessor in one compare-and-set (_issue). The scope was checked
        by Authlib (never wider); repeated names are dropped."""
        presented: PresentedRefreshToken = self.request.refresh_token
        grant, at = presented.row.grant, app_now()
        if presented.successor is not None:
            successor = tokens.successor_of(presented.value)
            return _token_response(grant, presented.successor.scope, at, refresh_token=successor).body()
        scope = " ".join(dict.fromkeys(scope.split()))
        return _issue(grant, scope, at, predecessor=(presented.row, presented.value)).body()

    def revoke_old_credential(self, refresh_token: PresentedRefreshToken) -> None:
        """Hook: the predecessor was marked rotated in the transaction that stored its successor (_issue)."""


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
        marked = rows_changed(
            update(RefreshToken)
            .where(RefreshToken.id == old.id, RefreshToken.rotated_at.is_(None))
            .values(rotated_to=row.id, rotated_at=now, last_used_at=now)
        )
        if marked != 1:
            raise TemporarilyUnavailable("Concurrent refresh; retry.")
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
