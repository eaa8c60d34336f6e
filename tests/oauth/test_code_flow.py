"""Authorization code + PKCE end to end through the test client (catalogue #12, #16, #19)."""

import base64
import hashlib

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from app.extensions import db
from app.oauth.models import OAuthGrant
from tests.oauth.conftest import pkce, query_of


def decode(app, token: str) -> jwt.Token:
    keyset = KeySet.import_key_set(app.test_client().get("/oauth/jwks").json)
    return jwt.decode(token, keyset, algorithms=["RS256"])


def test_code_flow_issues_tokens_bound_to_the_grant(app, flow, clock):
    body = flow.redeem(*flow.code()).json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["refresh_token"].startswith("ghr_") and body["grant_token"].startswith("ghg_")
    assert body["scope"] == "openid profile email"
    id_token = decode(app, body["id_token"])
    assert id_token.header["alg"] == "RS256" and id_token.header["kid"]
    claims = id_token.claims
    with app.app_context():
        grant = OAuthGrant.by_public_id(claims["sid"])
        assert grant is not None and grant.client.client_id == flow.rp.client_id
    assert claims["aud"] == claims["azp"] == flow.rp.client_id
    assert claims["nonce"] == "n-1"
    assert claims["auth_time"] == int(clock.now().timestamp())
    access = decode(app, body["access_token"])
    assert access.header["typ"] == "at+jwt"
    assert {"iss", "aud", "sub", "client_id", "exp", "iat", "jti", "sid", "scope"} <= set(access.claims)
    assert access.claims["sid"] == claims["sid"]
    assert access.claims["exp"] - access.claims["iat"] == 600


def test_authorization_response_carries_iss_and_state(app, flow):
    from tests.oauth.conftest import pkce

    response = flow.authorize(pkce()[1], state="a&b=c%d+e/ é" + "x" * 480)
    answer = query_of(response.headers["Location"])
    assert answer["state"] == "a&b=c%d+e/ é" + "x" * 480
    assert answer["iss"] == app.config["ISSUER"]


def test_token_response_is_not_cached(flow):
    response = flow.redeem(*flow.code())
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_userinfo_is_filtered_by_scope(app, flow):
    tokens = flow.tokens(scope="openid email")
    info = app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert set(info.json) == {"sub", "email", "email_verified"}
    as_id_token = app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['id_token']}"})
    assert as_id_token.status_code == 401  # catalogue #17: an ID token is not an access token


def test_code_replay_revokes_what_the_first_use_issued(app, flow, clock):
    code, verifier = flow.code()
    first = flow.redeem(code, verifier).json
    clock.advance(seconds=1)
    replay = flow.redeem(code, verifier)
    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    assert flow.refresh(first["refresh_token"]).json["error"] == "invalid_grant"
    assert flow.introspect(first["access_token"]) == {"active": False}
    with app.app_context():
        from app.audit.models import AuditEvent

        assert len(AuditEvent.tagged("oauth:authorization_code:replay")) == 1


def test_expired_code_is_refused(flow, clock):
    code, verifier = flow.code()
    clock.advance(seconds=61)
    assert flow.redeem(code, verifier).json["error"] == "invalid_grant"


def test_wrong_verifier_burns_the_code(flow):
    code, verifier = flow.code()
    other = "z" * 50
    assert flow.redeem(code, other).json["error"] == "invalid_grant"
    assert flow.redeem(code, verifier).json["error"] == "invalid_grant"


def test_redirect_uri_must_match_at_the_token_endpoint(flow):
    code, verifier = flow.code()
    response = flow.token(grant_type="authorization_code", code=code, code_verifier=verifier)
    assert response.json["error"] == "invalid_grant"


def test_refresh_rotates(flow):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).json
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert "grant_token" not in second


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_a_code_challenge_with_a_trailing_newline_is_refused(flow):
    # fullmatch, not match with "$": "$" also matches before a final newline.
    response = flow.authorize("A" * 43 + "\n")
    assert response.status_code in (302, 303)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_a_code_verifier_with_a_trailing_newline_is_refused(flow):
    verifier = "v" * 43 + "\n"
    response = flow.authorize(_s256(verifier))
    if response.status_code == 200 and "consent" in response.text:
        response = flow.consent(response)
    code = query_of(response.headers["Location"])["code"]
    answer = flow.redeem(code, verifier)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_request"


def test_head_never_acts_on_authorize_nor_logout(app, flow):
    """The GET exception of the specs is GET alone: HEAD with a full valid request issues nothing, ends nothing."""
    tokens = flow.tokens()
    _, challenge = pkce()
    query = {"response_type": "code", "client_id": flow.rp.client_id, "redirect_uri": flow.rp.redirect_uri,
             "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"}  # fmt: skip
    with app.app_context():
        grants_before = db.session.scalar(select(func.count()).select_from(OAuthGrant))
    authorize = flow.browser.open("/oauth/authorize", method="HEAD", query_string=query)
    logout = flow.browser.open("/oauth/logout", method="HEAD", query_string={"id_token_hint": tokens["id_token"]})
    for response in (authorize, logout):
        assert response.status_code == 405 and "Location" not in response.headers
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OAuthGrant)) == grants_before
    assert flow.browser.get("/account/devices").status_code == 200  # still signed in
