"""RFC 7009 revocation, RFC 7662 introspection, and userinfo: tokens judged by their grant's state."""

from datetime import datetime

from app.oauth import claims, grants, keys, tokens
from app.oauth.errors import OAuthError
from app.oauth.models import OAuthClient, OAuthGrant, RefreshToken

INACTIVE = {"active": False}


def revoke(client: OAuthClient, value: str | None, now: datetime) -> None:
    """Revoking a refresh, grant or access token ends its grant (access tokens are stateless JWTs: their grant
    is what can be revoked, so every token of that grant stops working). Unknown tokens and other clients' tokens
    get the same silent 200, so the endpoint is no oracle (RFC 7009 §2.2)."""
    if not value:
        raise OAuthError("invalid_request", "token is required.")
    if value.startswith(tokens.REFRESH_PREFIX):
        row = RefreshToken.by_token_hash(tokens.digest(value))
        grant = row.grant if row else None
    elif value.startswith(tokens.GRANT_PREFIX):
        grant = OAuthGrant.by_token_hash(tokens.digest(value))
    else:
        grant = _grant_of_access_token(value, now)
    if grant is not None and grant.client_id == client.id:
        grants.revoke_grants(OAuthGrant.id == grant.id, reason=grants.REASON_REVOKED_BY_CLIENT, now=now)


def _grant_of_access_token(value: str, now: datetime) -> OAuthGrant | None:
    try:
        body = keys.verify(value, claims.ACCESS_TOKEN_TYP, now)
    except keys.InvalidJWT:
        return None
    return OAuthGrant.by_public_id(body["sid"]) if "sid" in body else None


def live_grant(grant: OAuthGrant | None, now: datetime) -> bool:
    """Its client still enabled (disabling revokes the grants too, this holds between) and the grant standing."""
    return grant is not None and grant.client.disabled_at is None and grants.state(grant, now) == grants.ACTIVE


def introspect(client: OAuthClient, value: str | None, now: datetime) -> dict:
    """Exactly {"active": false} for anything revoked, expired, unknown or another client's."""
    if not value:
        raise OAuthError("invalid_request", "token is required.")
    if value.startswith(tokens.REFRESH_PREFIX):
        return _introspect_refresh(client, RefreshToken.by_token_hash(tokens.digest(value)), now)
    try:
        body = keys.verify(value, claims.ACCESS_TOKEN_TYP, now)
    except keys.InvalidJWT:
        return INACTIVE
    if body.get("client_id") != client.client_id:
        return INACTIVE
    if "sid" in body and not live_grant(OAuthGrant.by_public_id(body["sid"]), now):
        return INACTIVE
    return {"active": True, "token_type": "Bearer"} | {k: body[k] for k in
            ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "sid") if k in body}  # fmt: skip


def _introspect_refresh(client: OAuthClient, row: RefreshToken | None, now: datetime) -> dict:
    if row is None or row.grant.client_id != client.id or row.revoked_at or row.rotated_at or now > row.expires_at:
        return INACTIVE
    if not live_grant(row.grant, now):
        return INACTIVE
    return {"active": True, "token_type": "refresh_token", "scope": row.scope, "client_id": client.client_id,
            "sub": claims.subject(row.grant.user_id), "exp": int(row.expires_at.timestamp()),
            "sid": row.grant.public_id}  # fmt: skip


class InvalidToken(Exception):
    """RFC 6750 §3.1 invalid_token: the bearer token is forged, expired or its grant has ended."""


class MissingToken(Exception):
    """No bearer token at all: RFC 6750 §3.1 says to answer without an error code."""


def userinfo(authorization: str | None, now: datetime) -> dict:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise MissingToken()
    try:
        body = keys.verify(authorization[7:].strip(), claims.ACCESS_TOKEN_TYP, now)  # an ID token's typ is refused
    except keys.InvalidJWT as exc:
        raise InvalidToken("The access token is not valid.") from exc
    grant = OAuthGrant.by_public_id(body.get("sid", ""))
    if not live_grant(grant, now) or "openid" not in body.get("scope", "").split():
        raise InvalidToken("The access token is no longer valid.")
    return claims.userinfo(grant, body["scope"])
