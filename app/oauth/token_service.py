"""The token endpoint's refresh and client-credentials grants on Authlib, and the tokens every grant issues (the code
exchange, which shares them, is app/oauth/code_grant.py)."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, TokenMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant, RefreshTokenGrant
from flask import current_app
from sqlalchemy import update

from app.clock import now as app_now
from app.extensions import db, rows_changed
from app.oauth import claims, grants, tokens
from app.oauth.models import OAuthClient, OAuthGrant, RefreshToken
from app.oauth.server import CLIENT_AUTH_METHODS

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


class TemporarilyUnavailable(OAuth2Error):
    """RFC 6749 §5.2 has no code for it; 503 temporarily_unavailable as at the authorization endpoint (§4.1.2.1)."""

    error = "temporarily_unavailable"
    status_code = 503


@dataclass(frozen=True)
class PresentedRefreshToken(TokenMixin):
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
        a first rotation stores it and marks the predecessor in one compare-and-set (issue). The scope was checked
        by Authlib (never wider); repeated names are dropped."""
        presented: PresentedRefreshToken = self.request.refresh_token
        grant, at = presented.row.grant, app_now()
        if presented.successor is not None:
            successor = tokens.successor_of(presented.value)
            return _token_response(grant, presented.successor.scope, at, refresh_token=successor, id_token=True).body()
        scope = " ".join(dict.fromkeys(scope.split()))
        return issue(grant, scope, at, predecessor=(presented.row, presented.value)).body()

    def revoke_old_credential(self, refresh_token: PresentedRefreshToken) -> None:
        """Hook: the predecessor was marked rotated in the transaction that stored its successor (issue)."""


def issue(grant: OAuthGrant, scope: str, now: datetime, *, predecessor=None) -> TokenResponse:
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
    return _token_response(grant, scope, now, refresh_token=value, id_token=predecessor is not None)


def _token_response(grant: OAuthGrant, scope: str, now: datetime, *, refresh_token: str, id_token: bool):
    """A refreshed ID token is ours to add (Authlib has no OpenID extension for refresh); after a code exchange
    Authlib's OpenIDCode extension adds it (code_grant.OpenIDConnectCode)."""
    ttl = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
    response = TokenResponse(claims.access_token(grant, scope, now), ttl, scope, refresh_token=refresh_token)
    if id_token and "openid" in scope.split():
        response.id_token = claims.id_token(grant, now)
    return response


class ClientCredentials(ClientCredentialsGrant):
    """RFC 6749 §4.4 on Authlib's grant, for machine clients registered with it (never public ones: registration
    refuses that, and a client without the grant type gets Authlib's unauthorized_client)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        """Hook: a JWT access token naming the client itself (RFC 9068), and no refresh token."""
        ttl = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
        return TokenResponse(claims.client_access_token(self.request.client, app_now()), ttl, "").body()
