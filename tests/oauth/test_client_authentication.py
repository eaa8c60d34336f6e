"""RFC 6749 §2.3 client authentication and the RFC 7009 / RFC 7662 requests, as the Authlib server answers them."""

import base64
import logging

import pytest
from werkzeug.datastructures import MultiDict

from tests.oauth.conftest import Flow, pkce, query_of


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def percent_encoded(value: str) -> str:
    return "".join(f"%{byte:02X}" for byte in value.encode())


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
def test_basic_credentials_are_form_decoded(app, flow, path):
    """RFC 6749 §2.3.1: the id and secret are form-urlencoded before Base64; a client that encodes every octet
    is still the same client."""
    tokens = flow.tokens()
    headers = basic(percent_encoded(flow.rp.client_id), percent_encoded(flow.rp.secret))
    response = app.test_client().post(path, data={"token": tokens["refresh_token"]}, headers=headers)
    assert response.status_code == 200
    if path == "/oauth/introspect":
        assert response.json["active"] is True


def test_the_basic_challenge_answers_basic_only(app, flow):
    """RFC 6749 §5.2: the WWW-Authenticate challenge goes with a failed Authorization header, not with a failed
    client_secret_post."""
    form = {"token": "ghr_x"}
    in_basic = app.test_client().post("/oauth/introspect", data=form, headers=basic(flow.rp.client_id, "ghs_no"))
    posted = app.test_client().post("/oauth/introspect", data=form | {"client_id": flow.rp.client_id,
                                                                        "client_secret": "ghs_no"})  # fmt: skip
    assert (in_basic.status_code, in_basic.headers["WWW-Authenticate"]) == (401, 'Basic realm="gatehouse"')
    assert posted.status_code == 401 and "WWW-Authenticate" not in posted.headers
    assert (
        in_basic.json
        == posted.json
        == {"error": "invalid_client", "error_description": "Client authentication failed."}
    )


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
def test_a_request_without_a_token_is_invalid(app, flow, path):
    response = app.test_client().post(path, data=flow.rp.auth())
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
def test_a_repeated_parameter_is_refused(app, flow, path):
    tokens = flow.tokens()
    form = MultiDict([*flow.rp.auth().items(), ("token", tokens["refresh_token"]), ("token", "ghr_other")])
    response = app.test_client().post(path, data=form)
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert flow.refresh(tokens["refresh_token"]).status_code == 200


def test_an_unknown_token_type_hint_is_ignored(app, flow):
    """RFC 7009 §2.1: the hint only helps the lookup; the token is still found and revoked."""
    tokens = flow.tokens()
    form = flow.rp.auth() | {"token": tokens["refresh_token"], "token_type_hint": "grant_token"}
    response = app.test_client().post("/oauth/revoke", data=form)
    assert (response.status_code, response.json) == (200, {})
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"


def test_a_public_client_revokes_and_introspects_with_its_id_alone(app, owner, make_client):
    flow = Flow(app, make_client(public=True, first_party=True)).sign_in()
    tokens = flow.tokens()
    assert flow.introspect(tokens["refresh_token"])["active"] is True
    response = app.test_client().post("/oauth/revoke", data={"client_id": flow.rp.client_id,
                                                             "token": tokens["refresh_token"]})  # fmt: skip
    assert response.status_code == 200
    assert flow.introspect(tokens["access_token"]) == {"active": False}


def test_a_confidential_client_without_its_secret_is_refused(app, flow):
    response = app.test_client().post("/oauth/introspect", data={"client_id": flow.rp.client_id, "token": "ghr_x"})
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def _code_for(flow, challenge: str) -> str:
    response = flow.authorize(challenge)
    if response.status_code == 200 and "consent" in response.text:
        response = flow.consent(response)
    return query_of(response.headers["Location"])["code"]


def test_the_verifier_is_never_compared_as_plain(flow):
    """DESIGN §5: S256 only. A verifier equal to the challenge is what `plain` (Authlib's default method) accepts."""
    challenge = "c" * 43
    answer = flow.redeem(_code_for(flow, challenge), challenge)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_grant"


@pytest.mark.parametrize("public", [False, True])
def test_every_client_must_present_a_verifier(app, owner, make_client, public):
    """DESIGN §5: PKCE binds confidential clients too (Authlib's CodeChallenge binds only public ones)."""
    flow = Flow(app, make_client(public=public, first_party=True)).sign_in()
    verifier, challenge = pkce()
    code = _code_for(flow, challenge)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.rp.redirect_uri}
    answer = flow.token(**form)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_request"
    assert flow.redeem(code, verifier).status_code == 200  # refused before the code was looked at


def test_a_client_credentials_token_never_reaches_the_logs(app, owner, make_client, caplog):
    """Catalogue #32: Authlib's grants log what they issue at DEBUG; that logger stays above it."""
    machine = make_client(client_credentials=True)
    with caplog.at_level(logging.DEBUG):
        response = app.test_client().post("/oauth/token", data=machine.auth() | {"grant_type": "client_credentials"})
    assert response.status_code == 200 and "refresh_token" not in response.json
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert response.json["access_token"] not in logged and machine.secret not in logged
