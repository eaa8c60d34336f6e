"""What our tokens say: RFC 9068 access tokens, OIDC ID tokens, userinfo filtered by scope."""

import secrets
from datetime import datetime
from typing import Protocol

from flask import current_app

from app.oauth import keys
from app.oauth.models import OAuthClient, OAuthGrant
from app.sessions import methods

ACCESS_TOKEN_TYP = "at+jwt"
ID_TOKEN_TYP = "JWT"


class NamedClient(Protocol):
    @property
    def client_id(self) -> str: ...


class TokenGrant(Protocol):
    """What the tokens say about a grant: an OAuthGrant, or the facts a refresh read with its token
    (token_service.GrantFacts) without loading the grant as an ORM object."""

    @property
    def client(self) -> NamedClient: ...
    @property
    def user_id(self) -> int: ...
    @property
    def public_id(self) -> str: ...
    @property
    def auth_time(self) -> datetime: ...
    @property
    def auth_methods(self) -> str: ...


def _issuer() -> str:
    return current_app.config["ISSUER"]


def _times(now: datetime, ttl_key: str) -> dict:
    issued = int(now.timestamp())
    return {"iat": issued, "exp": issued + current_app.config[ttl_key]}


def access_token(grant: TokenGrant, scope: str, now: datetime) -> str:
    """RFC 9068: short-lived, and carries `sid` so a resource server can check the grant offline or ask."""
    body = {
        "iss": _issuer(),
        "aud": grant.client.client_id,
        "sub": subject(grant.user_id),
        "client_id": grant.client.client_id,
        "jti": secrets.token_urlsafe(16),
        "sid": grant.public_id,
        "scope": scope,
        "auth_time": int(grant.auth_time.timestamp()),
        **_times(now, "ACCESS_TOKEN_TTL_SECONDS"),
    }
    return keys.sign(body, ACCESS_TOKEN_TYP, now)


def client_access_token(client: OAuthClient, now: datetime) -> str:
    body = {"iss": _issuer(), "aud": client.client_id, "sub": client.client_id, "client_id": client.client_id,
            "jti": secrets.token_urlsafe(16), "scope": "", **_times(now, "ACCESS_TOKEN_TTL_SECONDS")}  # fmt: skip
    return keys.sign(body, ACCESS_TOKEN_TYP, now)


def id_token(grant: TokenGrant, now: datetime, nonce: str | None = None) -> str:
    """OIDC Core §2: `sid` is the grant's public id; a refreshed ID token keeps the claims and drops nonce."""
    body = {
        "iss": _issuer(),
        "sub": subject(grant.user_id),
        "aud": grant.client.client_id,
        "azp": grant.client.client_id,
        "auth_time": int(grant.auth_time.timestamp()),
        # OIDC Core §2 with RFC 8176 values: how the approving session signed in, and what that adds up to.
        "amr": methods.amr(grant.auth_methods),
        "acr": methods.acr(grant.auth_methods),
        "sid": grant.public_id,
        **_times(now, "ID_TOKEN_TTL_SECONDS"),
    }
    if nonce:
        body["nonce"] = nonce
    return keys.sign(body, ID_TOKEN_TYP, now)


def subject(user_id: int) -> str:
    return str(user_id)


def userinfo(grant: OAuthGrant, scope: str) -> dict:
    user, scopes = grant.user, set(scope.split())
    info: dict[str, str | bool] = {"sub": subject(user.id)}
    if "profile" in scopes:
        info["name"] = user.name
    if "email" in scopes:
        info |= {"email": user.email, "email_verified": False}
    return info
