"""Checking the portal's JWTs: ID tokens (OIDC Core §3.1.3.7) and logout tokens (Back-Channel Logout 1.0 §2.6)."""

import base64
import json
from collections.abc import Callable
from datetime import datetime

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

ALGORITHM = "RS256"
LEEWAY_SECONDS = 30  # clock skew allowed between the portal and this app
LOGOUT_TYP = "logout+jwt"  # Back-Channel Logout 1.0 §2.4 (explicit typing, RFC 8725 §3.11)
ID_TOKEN_TYPS = (None, "JWT")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

KeyLookup = Callable[[str], RSAKey | None]


class InvalidToken(ValueError):
    """The JWT is not one the portal issued for us, or not the kind expected here."""


def _header(token: str) -> dict:
    try:
        segment = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError) as exc:
        raise InvalidToken("malformed JWT") from exc
    if not isinstance(header, dict):
        raise InvalidToken("malformed JWT header")
    return header


def _decode(token: str, keys: KeyLookup) -> tuple[dict, dict]:
    """Signature by a key of the portal's JWKS, RS256 only (never alg none or HS256 with the public key)."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidToken("not a signed JWT")
    header = _header(token)
    if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
        raise InvalidToken("unexpected alg or no kid")
    key = keys(header["kid"])
    if key is None:
        raise InvalidToken("unknown kid")
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(f"bad signature ({type(exc).__name__})") from exc
    return decoded.header, decoded.claims


def _check_common(claims: dict, issuer: str, client_id: str, now: datetime) -> None:
    """iss exact, aud names us (azp when several), exp in the future, iat not in the future."""
    if claims.get("iss") != issuer:
        raise InvalidToken("wrong iss")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise InvalidToken("wrong aud")
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise InvalidToken("wrong azp")
    moment = now.timestamp()
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or expires <= moment - LEEWAY_SECONDS:
        raise InvalidToken("expired")
    if not isinstance(issued, int | float) or issued > moment + LEEWAY_SECONDS:
        raise InvalidToken("issued in the future")


def id_token(token: str, *, keys: KeyLookup, issuer: str, client_id: str, nonce: str, now: datetime) -> dict:
    """OIDC Core §3.1.3.7: signature, iss, aud, azp, exp, iat, and the nonce of this very request."""
    header, claims = _decode(token, keys)
    if header.get("typ") not in ID_TOKEN_TYPS:
        raise InvalidToken("not an ID token")
    _check_common(claims, issuer, client_id, now)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken("no sub")
    if claims.get("nonce") != nonce:
        raise InvalidToken("wrong nonce")
    if not isinstance(claims.get("sid"), str) or not claims["sid"]:
        raise InvalidToken("no sid")
    return claims


def logout_token(token: str, *, keys: KeyLookup, issuer: str, client_id: str, now: datetime) -> dict:
    """Back-Channel Logout 1.0 §2.6; sid is required (the kit ends sessions by sid, as session_required asks)."""
    header, claims = _decode(token, keys)
    if header.get("typ") != LOGOUT_TYP:  # an ID token posted here must not pass (§2.6 step 3, RFC 8725 §3.11)
        raise InvalidToken("typ is not logout+jwt")
    _check_common(claims, issuer, client_id, now)
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise InvalidToken("no back-channel logout event")
    if "nonce" in claims:  # §2.4: prohibited, so that an ID token cannot be used as a logout token
        raise InvalidToken("a logout token must not carry a nonce")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidToken("no jti")
    if not isinstance(claims.get("sid"), str) or not claims["sid"]:
        raise InvalidToken("no sid")
    return claims
