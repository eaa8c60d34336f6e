"""Catalogue #12 with pyoidc (`oic`): discovery, static registration, code + PKCE S256, ID token validation
against the published JWKS, userinfo and refresh, all done by the library as a relying party would.
"""

import json
from base64 import urlsafe_b64decode, urlsafe_b64encode

import pytest
import requests
from jwkest import BadSignature
from oic import rndstr
from oic.oauth2.exception import OtherError
from oic.oauth2.message import SchemeError
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationRequest,
    AuthorizationResponse,
    IdToken,
    OpenIDSchema,
    ProviderConfigurationResponse,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from app.accounts.models import User
from app.extensions import db
from app.oauth.keys import ALGORITHM
from tests import factories
from tests.conftest import csrf_token_from
from tests.factors.conftest import app_code, enrolled
from tests.oauth_e2e.conftest import SCOPE, TIMEOUT, follow, redirect_location

# Private JWK members (RFC 7518 §6.2.2 EC, §6.3.2 RSA, §6.4 oct): none may be published.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


def relying_party(live_server, rp) -> Client:
    """An oic client configured from discovery (endpoints and the keyjar from jwks_uri) and registered statically."""
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(live_server.url)
    client.store_registration_info(
        RegistrationResponse(client_id=rp.client_id, client_secret=rp.secret, redirect_uris=[rp.redirect_uri])
    )
    client.redirect_uris = [rp.redirect_uri]
    return client


def authorize(client: Client, portal, rp) -> tuple[AuthorizationRequest, str, AuthorizationResponse]:
    """Build the request with oic (PKCE S256 from add_code_challenge), follow it, and parse the answer with oic."""
    pkce, verifier = client.add_code_challenge()
    assert pkce["code_challenge_method"] == "S256"
    request_args = {"response_type": "code", "scope": SCOPE, "state": rndstr(24), "nonce": rndstr(24),
                    "redirect_uri": rp.redirect_uri, **pkce}  # fmt: skip
    # request_info also remembers state → nonce, which do_access_token_request checks against the ID token.
    url, _, _, request = client.authorization_request_info(request_args=request_args)
    assert client.state2nonce[request["state"]] == request["nonce"]
    location = redirect_location(follow(portal, url), rp.redirect_uri)
    # parse_response verifies `iss` (RFC 9207) against the discovered issuer.
    response = client.parse_response(AuthorizationResponse, info=location, sformat="urlencoded")
    assert isinstance(response, AuthorizationResponse), response
    assert response["state"] == request["state"]
    assert response["iss"] == client.provider_info["issuer"]
    return request, verifier, response


def redeem(client: Client, request, verifier: str, code: str) -> AccessTokenResponse:
    return client.do_access_token_request(
        state=request["state"],
        request_args={"code": code, "code_verifier": verifier, "redirect_uri": request["redirect_uri"]},
        authn_method="client_secret_basic",
    )


def test_discovery_metadata_and_jwks(live_server):
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    metadata = client.provider_config(live_server.url)
    assert metadata["issuer"] == live_server.url
    assert client.authorization_endpoint == live_server.endpoint("/oauth/authorize")
    assert client.token_endpoint == live_server.endpoint("/oauth/token")
    assert client.userinfo_endpoint == live_server.endpoint("/oauth/userinfo")
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["id_token_signing_alg_values_supported"] == [ALGORITHM]
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]  # OIDC Discovery 1.0 §3: MUST be included
    # oic's own validation of the metadata (required members, types, openid in scopes_supported) passes; its one
    # remaining rule, an https issuer, cannot hold for a plain-http loopback server and is the only complaint.
    assert isinstance(metadata, ProviderConfigurationResponse)
    with pytest.raises(SchemeError, match="Not HTTPS"):
        metadata.verify()
    as_if_https = metadata.to_dict() | {"issuer": live_server.url.replace("http://", "https://")}
    assert ProviderConfigurationResponse(**as_if_https).verify()
    oauth_metadata = requests.get(live_server.endpoint("/.well-known/oauth-authorization-server"), timeout=TIMEOUT)
    assert oauth_metadata.json()["issuer"] == live_server.url
    assert oauth_metadata.json()["code_challenge_methods_supported"] == ["S256"]

    jwks = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kid"] and key["alg"] == ALGORITHM and key["kty"] == KEY_TYPES[ALGORITHM] and key["use"] == "sig"
        assert not PRIVATE_MEMBERS & set(key), key  # public parts only
    # oic loaded the same keys for the issuer, as verification keys.
    loaded = client.keyjar.get_verify_key(owner=live_server.url)
    assert {k.kid for k in loaded} == {k["kid"] for k in jwks["keys"]}


def test_code_flow_with_id_token_validation_userinfo_and_refresh(live_server, portal, first_party, owner):
    client = relying_party(live_server, first_party)
    request, verifier, answer = authorize(client, portal, first_party)

    # The token response's ID token is verified by oic as it is parsed: its signature against the keys from
    # jwks_uri, iss == the discovered issuer, aud and azp == our client_id, exp and iat against the wall clock.
    tokens = redeem(client, request, verifier, answer["code"])
    assert isinstance(tokens, AccessTokenResponse), tokens
    id_token = tokens["id_token"]
    assert isinstance(id_token, IdToken)
    assert id_token.jws_header["alg"] == ALGORITHM
    published = {k["kid"] for k in requests.get(client.provider_info["jwks_uri"], timeout=TIMEOUT).json()["keys"]}
    assert id_token.jws_header["kid"] in published
    client.verify_id_token(id_token, request)  # nonce (from our request), iss, aud, exp again
    assert id_token["nonce"] == request["nonce"]
    assert id_token["iss"] == live_server.url
    assert id_token["aud"] == [first_party.client_id] and id_token["azp"] == first_party.client_id
    assert id_token["sub"] == str(owner.owner_id)
    assert id_token["sid"]
    assert id_token["amr"] == ["pwd"] and id_token["acr"] == "urn:gatehouse:acr:pwd"  # a password alone (RFC 8176)
    assert id_token["auth_time"] == int(live_server.clock.now().timestamp())  # signed in at the (frozen) now
    assert id_token["iat"] == int(live_server.clock.now().timestamp())
    assert id_token["exp"] - id_token["iat"] == live_server.app.config["ID_TOKEN_TTL_SECONDS"]

    # Userinfo with the token oic holds for this state (GET with the Authorization header, as OIDC recommends);
    # oic also checks that userinfo's sub is the ID token's.
    info = client.do_user_info_request(method="GET", state=request["state"])
    assert isinstance(info, OpenIDSchema), info
    assert info.to_dict() == {"sub": str(owner.owner_id), "name": "Ada Lovelace", "email": "ada@example.test",
                              "email_verified": False}  # fmt: skip

    # Refresh through oic: the new ID token is verified the same way and keeps the session's claims.
    refreshed = client.do_access_token_refresh(state=request["state"], authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    again = refreshed["id_token"]
    assert isinstance(again, IdToken) and again.jws_header["alg"] == ALGORITHM
    for claim in ("iss", "sub", "aud", "azp", "sid", "auth_time"):
        assert again[claim] == id_token[claim], claim
    assert "nonce" not in again  # OIDC Core §12.2
    info = client.do_user_info_request(method="GET", token=refreshed["access_token"])
    assert info["sub"] == str(owner.owner_id)


def test_a_two_step_sign_in_is_named_in_the_id_token(live_server, first_party, owner):
    """DESIGN §9: amr (RFC 8176) and acr say how the approving session signed in, read here by oic."""
    with live_server.app.app_context():
        user = db.session.get(User, owner.owner_id)
        enrolment = enrolled(user, live_server.clock.now())
    with requests.Session() as browser:
        page = browser.get(live_server.endpoint("/login"), timeout=TIMEOUT)
        form = {
            "email": factories.OWNER_EMAIL,
            "password": factories.PASSWORD,
            "csrf_token": csrf_token_from(page.text),
        }
        assert browser.post(live_server.endpoint("/login"), data=form, timeout=TIMEOUT).url.endswith("/login/verify")
        page = browser.get(live_server.endpoint("/login/verify"), timeout=TIMEOUT)
        code = app_code(enrolment, live_server.clock.now())
        form = {"code": code, "csrf_token": csrf_token_from(page.text)}
        verified = browser.post(live_server.endpoint("/login/verify"), data=form, timeout=TIMEOUT)
        assert verified.url == live_server.endpoint("/")
        client = relying_party(live_server, first_party)
        request, verifier, answer = authorize(client, browser, first_party)
        id_token = redeem(client, request, verifier, answer["code"])["id_token"]
    assert id_token["amr"] == ["pwd", "otp"] and id_token["acr"] == "urn:gatehouse:acr:mfa"


def test_oic_refuses_tampered_or_foreign_id_tokens(live_server, portal, first_party, third_party):
    """The validation above is real: a forged signature, a wrong nonce or another client's token is refused."""
    client = relying_party(live_server, first_party)
    request, verifier, answer = authorize(client, portal, first_party)
    tokens = redeem(client, request, verifier, answer["code"])
    raw = tokens["id_token_jwt"]

    header, payload, signature = raw.split(".")
    claims = json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_payload = urlsafe_b64encode(json.dumps(claims | {"sub": "someone-else"}).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignature):
        IdToken().from_jwt(f"{header}.{forged_payload}.{signature}", keyjar=client.keyjar)

    with pytest.raises(OtherError, match="nonce mismatch"):
        client.verify_id_token(tokens["id_token"], {"nonce": "not-the-one-we-sent"})

    other = relying_party(live_server, third_party)
    foreign = IdToken().from_jwt(raw, keyjar=other.keyjar)  # the signature is fine: it is our provider's
    with pytest.raises(OtherError, match="not intended for me"):
        other.verify_id_token(foreign, {"nonce": request["nonce"]})
