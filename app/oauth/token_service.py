"""The token endpoint's refresh and client-credentials grants on Authlib, and the tokens every grant issues (the code
exchange, which shares them, is app/oauth/code_grant.py)."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, TokenMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant, RefreshTokenGrant
from flask import current_app

from app.clock import now as app_now
from app.extensions import db
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
class GrantFacts:
    """What a token response says about its grant (claims.TokenGrant), read with the refresh token in one joined
    read on the fast path, instead of loading the grant and its portal session as ORM objects."""

    id: int
    public_id: str
    user_id: int
    auth_time: datetime
    auth_methods: str
    expires_at: datetime
    last_refreshed_at: datetime | None
    client: claims.NamedClient  # the authenticated client (the read asked for its tokens only)


@dataclass(frozen=True)
class LiveToken:
    """A refresh token that may rotate now (RefreshToken.live_for_rotation), read without a lock."""

    id: int
    chain_id: str
    scope: str
    grant: GrantFacts


@dataclass(frozen=True)
class PresentedRefreshToken(TokenMixin):
    """Authlib's refresh-token object, the value presented (its successor derives from it) and either

    - live: the fast path, a token that may rotate now, read without a lock (the compare-and-set decides); or
    - row: the locked row (anything else: unknown, revoked, expired, of an ended grant, or rotated), with the
      successor it already has when this is a retry inside the grace window."""

    value: str
    live: LiveToken | None = None
    row: RefreshToken | None = None
    successor: RefreshToken | None = None

    def check_client(self, client: OAuthClient) -> bool:
        if self.live is not None:
            return self.live.grant.client is client  # live_for_rotation asked for this client's tokens only
        return self.row is not None and self.row.grant.client_id == client.id

    def get_scope(self) -> str:
        if self.successor is not None:
            return self.successor.scope
        return self.live.scope if self.live is not None else self.row.scope if self.row is not None else ""


class Refresh(RefreshTokenGrant):
    """RFC 6749 §6 on Authlib's grant, with DESIGN §5's rotation, which Authlib's does not do: atomic (a
    compare-and-set under the row lock), reuse revokes the chain and the grant, and a retry inside the grace window
    gets the *same* successor.

    The fast path (a token that may rotate, of a grant that stands: nearly every refresh) reads once without a lock,
    signs the new tokens, and only then writes: the compare-and-set, the successor and its link (RefreshToken.rotate),
    so SQLite's one write lock is held for those three statements and the commit, not while signing. Anything else,
    and a compare-and-set lost to a concurrent rotation or revocation, takes the locked path, which decides as before
    (grace-window retry, reuse, revoked, expired, ended grant)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def authenticate_refresh_token(self, refresh_token: str) -> PresentedRefreshToken:
        """Hook: the fast path's unlocked read, or the locked path."""
        client, at = self.request.client, app_now()
        found = RefreshToken.live_for_rotation(tokens.digest(refresh_token), client.id, at)
        if found is None:
            return self._locked(refresh_token, at)
        grant = GrantFacts(found.grant_id, found.public_id, found.user_id, found.auth_time, found.auth_methods,
                           found.expires_at, found.last_refreshed_at, client)  # fmt: skip
        return PresentedRefreshToken(refresh_token, live=LiveToken(found.token_id, found.chain_id, found.scope, grant))

    def _locked(self, refresh_token: str, at: datetime) -> PresentedRefreshToken:
        """The row, locked (SELECT … FOR UPDATE / an immediate transaction) so that two refreshes of one token
        queue. A rotated token again is a grace-window retry, or reuse: the chain and its grant are revoked, and
        the view commits that although the answer is invalid_grant."""
        row = RefreshToken.by_token_hash(tokens.digest(refresh_token), lock=True)
        if row is None or row.grant.client_id != self.request.client.id:
            raise InvalidGrantError("Unknown refresh token.")
        if row.revoked_at is not None:
            raise InvalidGrantError("This refresh token has been revoked.")
        if row.rotated_at is not None:  # rotated_to may be gone (cleanup deleted the successor): still rotated
            return PresentedRefreshToken(refresh_token, row=row, successor=self._successor_in_grace(row, at))
        if at > row.expires_at:
            raise InvalidGrantError("This refresh token has expired.")
        return PresentedRefreshToken(refresh_token, row=row)

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

    def authenticate_user(self, refresh_token: PresentedRefreshToken) -> OAuthGrant | GrantFacts:
        """Hook: the token's grant while it still stands (its portal session too); as in CodeExchange, it stands for
        the user, whose row no token needs. The fast path's read asked all that already."""
        if refresh_token.live is not None:
            return refresh_token.live.grant
        assert refresh_token.row is not None  # the locked path always has its row
        grant = refresh_token.row.grant
        if grants.state(grant, app_now()) != grants.ACTIVE:
            raise InvalidGrantError(GRANT_ENDED)
        return grant

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        """Hook: the successor derived from the presented value (an HMAC), so a grace-window retry gets the same one;
        a first rotation marks the predecessor, stores the successor and links it (RefreshToken.rotate). The scope
        was checked by Authlib (never wider); repeated names are dropped."""
        presented: PresentedRefreshToken = self.request.refresh_token
        scope, at = " ".join(dict.fromkeys(scope.split())), app_now()
        successor = tokens.successor_of(presented.value)
        if presented.live is not None:
            live = presented.live
            response = _token_response(live.grant, scope, at, refresh_token=successor, id_token=True)
            if _rotate(live.id, live.chain_id, live.grant, scope, at, successor):
                return response.body()
            # Lost the compare-and-set to a concurrent rotation or revocation: decide as a locked refresh would.
            presented = self.request.refresh_token = self._locked(presented.value, at)
            self.authenticate_user(presented)
        return self._locked_token(presented, scope, at, successor)

    @staticmethod
    def _locked_token(presented: PresentedRefreshToken, scope: str, at: datetime, successor: str) -> dict:
        """The locked path's answer: the successor a grace-window retry already has, or a rotation under the lock."""
        assert presented.row is not None  # the locked path always has its row
        grant = presented.row.grant
        if presented.successor is not None:
            return _token_response(grant, presented.successor.scope, at, refresh_token=successor, id_token=True).body()
        response = _token_response(grant, scope, at, refresh_token=successor, id_token=True)
        if not _rotate(presented.row.id, presented.row.chain_id, grant, scope, at, successor):
            raise TemporarilyUnavailable("Concurrent refresh; retry.")  # under the row lock: does not happen
        return response.body()

    def revoke_old_credential(self, refresh_token: PresentedRefreshToken) -> None:
        """Hook: the predecessor was marked rotated in the transaction that stored its successor (_rotate)."""


# The grant's last refresh is shown to the minute ("last refresh 3 min ago"): written at most once a minute, as a
# portal session's activity is (DESIGN §3), not on every refresh of a busy chain.
GRANT_REFRESHED_EVERY = timedelta(minutes=1)


def _rotate(token_id: int, chain_id: str, grant: "OAuthGrant | GrantFacts", scope: str, now: datetime,
            successor: str) -> bool:  # fmt: skip
    """Store the successor of the presented token (RefreshToken.rotate); False when a concurrent rotation or
    revocation took the predecessor first (nothing written). Rotation never extends the grant's absolute expiry."""
    lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"])
    last = grant.last_refreshed_at
    return RefreshToken.rotate(token_id, tokens.digest(successor), grant_id=grant.id,
                               chain_id=chain_id, scope=scope, now=now,
                               expires_at=min(now + lifetime, grant.expires_at),
                               note_refreshed=last is None or now - last >= GRANT_REFRESHED_EVERY)  # fmt: skip


def issue(grant: OAuthGrant, scope: str, now: datetime) -> TokenResponse:
    """Mint the first refresh token of a new chain, after a code exchange (code_grant.CodeExchange)."""
    value, chain = tokens.new_token(tokens.REFRESH_PREFIX), secrets.token_hex(16)
    lifetime = timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"])
    row = RefreshToken(token_hash=tokens.digest(value), grant_id=grant.id, chain_id=chain, scope=scope,
                       created_at=now, expires_at=min(now + lifetime, grant.expires_at))  # fmt: skip
    db.session.add(row)
    db.session.flush()
    return _token_response(grant, scope, now, refresh_token=value, id_token=False)


def _token_response(grant: claims.TokenGrant, scope: str, now: datetime, *, refresh_token: str, id_token: bool):
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
