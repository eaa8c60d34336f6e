"""OpenID Provider and RFC 8414 metadata, from the server's own constants, validated with Authlib's metadata classes."""

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc import discovery, rpinitiated
from flask import current_app, url_for

from app.oauth.code_grant import S256CodeChallenge
from app.oauth.keys import ALGORITHM
from app.oauth.scopes import SCOPES
from app.oauth.server import CLIENT_AUTH_METHODS
from app.sessions import methods

CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "sid", "amr", "acr", "name", "email",
          "email_verified"]  # fmt: skip


def _endpoint(name: str) -> str:
    return current_app.config["ISSUER"] + url_for(name)


def metadata(openid: bool) -> dict:
    body = {
        "issuer": current_app.config["ISSUER"],
        "authorization_endpoint": _endpoint("oauth.authorize"),
        "token_endpoint": _endpoint("oauth.token"),
        "jwks_uri": _endpoint("oauth.jwks"),
        "revocation_endpoint": _endpoint("oauth.revoke"),
        "introspection_endpoint": _endpoint("oauth.introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": S256CodeChallenge.SUPPORTED_CODE_CHALLENGE_METHOD,
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(SCOPES),
        "authorization_response_iss_parameter_supported": True,
    }
    if openid:
        body |= {
            "userinfo_endpoint": _endpoint("oauth.userinfo"),
            "end_session_endpoint": _endpoint("oauth.logout"),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "claims_supported": CLAIMS,
            "prompt_values_supported": ["none", "login", "consent"],
            "acr_values_supported": list(methods.ACR_VALUES),
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }
    # OIDC Discovery 1.0 and RP-Initiated Logout 1.0 §2.1 (end_session_endpoint) on top of RFC 8414.
    extensions = [discovery.OpenIDProviderMetadata, rpinitiated.OpenIDProviderMetadata] if openid else None
    validated = AuthorizationServerMetadata(body)
    validated.validate(metadata_classes=extensions)
    return dict(validated)
