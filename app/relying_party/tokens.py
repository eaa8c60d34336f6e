"""Checking the portal's JWTs: ID tokens with Authlib's CodeIDToken (OIDC Core §3.1.3.7), and logout tokens
(Back-Channel Logout 1.0 §2.6), for which Authlib has no class: ours, on Authlib's JWTClaims."""

from collections.abc import Callable
from datetime import datetime

from authlib.oauth2.claims import JWTClaims
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError, UnsupportedAlgorithmError
from joserfc.jwk import RSAKey

ALGORITHM = "RS256"
LEEWAY_SECONDS = 30  # clock skew allowed between the portal and this app
LOGOUT_TYP = "logout+jwt"  # Back-Channel Logout 1.0 §2.4 (explicit typing, RFC 8725 §3.11)
ID_TOKEN_TYPS = (None, "JWT")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

KeyLookup = Callable[[str], RSAKey | None]


class InvalidToken(ValueError):
    """The JWT is not one the portal issued for us, or not the kind expected here."""


def _decode(token: object, keys: KeyLookup) -> tuple[dict, dict]:
    """Signature by a key of the portal's JWKS, RS256 only (never alg none or HS256 with the public key)."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidToken("not a signed JWT")

    def key_of(signed) -> RSAKey:
        header = signed.headers()
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise InvalidToken("unexpected alg or no kid")
        key = keys(header["kid"])
        if key is None:
            raise InvalidToken("unknown kid")
        return key

    try:
        decoded = jwt.decode(token, key_of, algorithms=[ALGORITHM])
    except InvalidToken:
        raise
    except UnsupportedAlgorithmError as exc:
        raise InvalidToken("unexpected alg") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(f"bad signature ({type(exc).__name__})") from exc
    return decoded.header, decoded.claims


def _validate(claims: JWTClaims, now: datetime) -> None:
    """Authlib's claims validation on the kit's clock, its errors as InvalidToken."""
    try:
        claims.validate(now=int(now.timestamp()), leeway=LEEWAY_SECONDS)
    except ExpiredTokenError as exc:
        raise InvalidToken("expired") from exc
    except JoseError as exc:  # iss, aud, azp, nonce, iat "issued in the future", a missing claim...
        raise InvalidToken(str(exc)) from exc


def _options(issuer: str, client_id: str, *required: str) -> dict:
    """iss exactly ours, aud naming us; each required claim present and not blank."""
    return {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}} | {
        name: {"essential": True} for name in ("exp", "iat", *required)
    }


def id_token(token: object, *, keys: KeyLookup, issuer: str, client_id: str, nonce: str, now: datetime,
             access_token: str | None = None) -> dict:  # fmt: skip
    """OIDC Core §3.1.3.7 through Authlib's CodeIDToken (iss, aud, azp, exp, iat, nonce, at_hash); ours on top:
    the header's typ (an ID token is not a logout or access token) and a sid (the kit ends sessions by sid)."""
    header, claims = _decode(token, keys)
    if header.get("typ") not in ID_TOKEN_TYPS:
        raise InvalidToken("not an ID token")
    params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
    _validate(CodeIDToken(claims, header, _options(issuer, client_id, "sub", "nonce", "sid"), params), now)
    return claims


class LogoutToken(JWTClaims):
    """Back-Channel Logout 1.0 §2.4; Authlib validates ID tokens but has no logout-token class, so this one is ours."""

    validate_azp = CodeIDToken.validate_azp  # several audiences: azp must name us, as for an ID token

    def validate(self, now=None, leeway=0):
        super().validate(now, leeway)
        self.validate_azp()
        if not isinstance(self.get("events"), dict) or not isinstance(self["events"].get(BACKCHANNEL_EVENT), dict):
            raise InvalidToken("no back-channel logout event")
        if "nonce" in self:  # §2.4: prohibited, so that an ID token cannot be used as a logout token
            raise InvalidToken("a logout token must not carry a nonce")


def logout_token(token: str, *, keys: KeyLookup, issuer: str, client_id: str, now: datetime) -> dict:
    """Back-Channel Logout 1.0 §2.6; sid is required (the kit ends sessions by sid, as session_required asks)."""
    header, claims = _decode(token, keys)
    if header.get("typ") != LOGOUT_TYP:  # an ID token posted here must not pass (§2.6 step 3, RFC 8725 §3.11)
        raise InvalidToken("typ is not logout+jwt")
    options = _options(issuer, client_id, "events", "jti", "sid")
    _validate(LogoutToken(claims, header, options, {"client_id": client_id}), now)
    return claims
