"""Client authentication, revocation, introspection, discovery, JWKS and key rotation (#23-#25)."""

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from app.extensions import db
from app.oauth import keys
from tests.oauth.conftest import Flow


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_client_secret_basic_works(app, flow):
    code, verifier = flow.code()
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": flow.rp.redirect_uri}  # fmt: skip
    response = app.test_client().post("/oauth/token", data=form, headers=basic(flow.rp.client_id, flow.rp.secret))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("credentials", "basic_used"),
    [
        ({}, False),
        ({"client_id": "unknown", "client_secret": "x"}, False),
        ({"client_secret": "ghs_wrong"}, False),
        ("wrong-basic", True),
    ],
)
def test_bad_client_credentials_are_401(app, flow, credentials, basic_used):
    form = {"grant_type": "refresh_token", "refresh_token": "ghr_x"}
    if basic_used:
        response = app.test_client().post("/oauth/token", data=form, headers=basic(flow.rp.client_id, "wrong"))
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    else:
        if "client_secret" in credentials and "client_id" not in credentials:
            credentials = {"client_id": flow.rp.client_id} | credentials
        response = app.test_client().post("/oauth/token", data=form | credentials)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_two_authentication_methods_at_once_are_refused(app, flow):
    form = {"grant_type": "refresh_token", "refresh_token": "ghr_x", "client_secret": flow.rp.secret}
    response = app.test_client().post("/oauth/token", data=form, headers=basic(flow.rp.client_id, flow.rp.secret))
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_public_client_presenting_a_secret_is_refused(app, owner, make_client):
    public = make_client(public=True, first_party=True)
    form = {"grant_type": "refresh_token", "refresh_token": "ghr_x", "client_id": public.client_id,
            "client_secret": "anything"}  # fmt: skip
    assert app.test_client().post("/oauth/token", data=form).status_code == 401


def test_disabled_client_is_refused(app, flow):
    tokens = flow.tokens()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["clients", "disable", flow.rp.client_id]).exit_code == 0
    assert flow.refresh(tokens["refresh_token"]).status_code == 401


def test_client_secret_is_stored_as_a_keyed_digest(app, flow):
    with app.app_context():
        dump = str(db.session.execute(db.text("SELECT * FROM oauth_clients")).all())
    assert flow.rp.secret not in dump and flow.rp.secret[4:] not in dump


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        ({}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "unauthorized_client"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "ghc_x"}, "invalid_request"),
    ],
)
def test_token_endpoint_errors_are_json(app, flow, form, error):
    response = app.test_client().post("/oauth/token", data=flow.rp.auth() | form)
    assert response.status_code == 400 and response.json["error"] == error
    assert response.headers["Cache-Control"] == "no-store"
    assert "\n" not in response.json["error_description"]


def test_token_endpoint_refuses_get_and_json_bodies(app, flow):
    assert app.test_client().get("/oauth/token").status_code == 405
    response = app.test_client().post("/oauth/token", json={"grant_type": "refresh_token"})
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_client_credentials_for_allowed_clients(app, owner, make_client):
    machine = make_client(client_credentials=True)
    response = app.test_client().post("/oauth/token", data=machine.auth() | {"grant_type": "client_credentials"})
    assert response.status_code == 200 and "refresh_token" not in response.json
    assert Flow(app, machine).introspect(response.json["access_token"])["active"] is True


def test_revoking_a_refresh_token_ends_its_grant(app, flow):
    tokens = flow.tokens()
    response = app.test_client().post("/oauth/revoke", data=flow.rp.auth() | {"token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert flow.introspect(tokens["access_token"]) == {"active": False}


def test_revoking_a_grant_token_ends_the_grant(app, flow):
    tokens = flow.tokens()
    app.test_client().post("/oauth/revoke", data=flow.rp.auth() | {"token": tokens["grant_token"]})
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"


@pytest.mark.parametrize("token", ["ghr_unknown", "garbage", "ghg_nope", "x" * 5000])
def test_revoking_unknown_tokens_is_a_quiet_200(app, flow, token):
    response = app.test_client().post("/oauth/revoke", data=flow.rp.auth() | {"token": token})
    assert response.status_code == 200 and response.json == {}


def test_another_client_cannot_revoke_or_introspect_and_learns_nothing(app, flow, make_client):
    tokens = flow.tokens()
    other = Flow(app, make_client(first_party=True))
    unknown = app.test_client().post("/oauth/revoke", data=other.rp.auth() | {"token": "ghr_unknown"})
    foreign = app.test_client().post("/oauth/revoke", data=other.rp.auth() | {"token": tokens["refresh_token"]})
    assert (foreign.status_code, foreign.text) == (unknown.status_code, unknown.text)
    assert other.introspect(tokens["access_token"]) == {"active": False}
    assert other.introspect(tokens["refresh_token"]) == {"active": False}
    assert flow.refresh(tokens["refresh_token"]).status_code == 200


def test_introspection_of_live_tokens(app, flow, clock):
    tokens = flow.tokens()
    access = flow.introspect(tokens["access_token"])
    assert access["active"] is True and access["client_id"] == flow.rp.client_id and access["sid"]
    assert flow.introspect(tokens["refresh_token"])["active"] is True
    clock.advance(seconds=601)
    assert flow.introspect(tokens["access_token"]) == {"active": False}


def test_discovery_metadata(app):
    body = app.test_client().get("/.well-known/openid-configuration").json
    assert body["issuer"] == app.config["ISSUER"]
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert set(body["grant_types_supported"]) <= {"authorization_code", "refresh_token", "client_credentials"}
    assert "openid" in body["scopes_supported"]
    assert body["id_token_signing_alg_values_supported"] == ["RS256"]
    oauth = app.test_client().get("/.well-known/oauth-authorization-server").json
    assert oauth["issuer"] == body["issuer"] and "userinfo_endpoint" not in oauth


def test_jwks_holds_public_keys_only(app):
    body = app.test_client().get("/oauth/jwks").json
    [key] = body["keys"]
    assert key["kid"] and key["alg"] == "RS256" and key["use"] == "sig"
    assert "d" not in key


def test_key_rotation_keeps_old_tokens_verifiable(app, flow, clock):
    before = flow.tokens()
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0
    new_kid = json.loads(result.output)["kid"]
    after = flow.tokens()
    keyset = KeySet.import_key_set(app.test_client().get("/oauth/jwks").json)
    assert jwt.decode(after["access_token"], keyset, algorithms=["RS256"]).header["kid"] == new_kid
    assert jwt.decode(before["access_token"], keyset, algorithms=["RS256"]).header["kid"] != new_kid
    assert flow.introspect(before["access_token"])["active"] is True
    clock.advance(seconds=661)  # past the longest token lifetime: the old key leaves the JWKS
    assert [k["kid"] for k in app.test_client().get("/oauth/jwks").json["keys"]] == [new_kid]


def test_our_verifier_refuses_none_and_hs256_with_the_public_key(app, flow, clock):
    tokens = flow.tokens()
    with app.app_context():
        claims = keys.verify(tokens["access_token"], "at+jwt", clock.now())
        public = app.test_client().get("/oauth/jwks").json["keys"][0]
        header = {"alg": "HS256", "typ": "at+jwt", "kid": public["kid"]}
        forged = jwt.encode(header, claims, OctKey.import_key(json.dumps(public).encode()), algorithms=["HS256"])
        with pytest.raises(keys.InvalidJWT):
            keys.verify(forged, "at+jwt", clock.now())
        unsigned = tokens["access_token"].rsplit(".", 1)[0].split(".")
        none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
        with pytest.raises(keys.InvalidJWT):
            keys.verify(f"{none_header}.{unsigned[1]}.", "at+jwt", clock.now())
        other_key = RSAKey.generate_key(2048, parameters={"kid": public["kid"]})
        with pytest.raises(keys.InvalidJWT):
            keys.verify(jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": public["kid"]}, claims, other_key),
                        "at+jwt", clock.now())  # fmt: skip


def rp_logout(flow, **params):
    return flow.browser.get("/oauth/logout", query_string=params)


def test_rp_logout_with_a_valid_hint_and_registered_uri_signs_out_and_goes_back(app, owner, make_client):
    rp = make_client(first_party=True, post_logout_redirect_uris=["https://app.test/bye"])
    flow = Flow(app, rp).sign_in()
    tokens = flow.tokens()
    response = rp_logout(flow, id_token_hint=tokens["id_token"], post_logout_redirect_uri="https://app.test/bye",
                         state="s1")  # fmt: skip
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://app.test/bye?state=s1")
    assert flow.browser.get("/").status_code == 302
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"


@pytest.mark.parametrize("case", ["no_hint", "altered_hint", "unregistered_uri"])
def test_rp_logout_without_proof_asks_first_and_keeps_the_session(app, owner, make_client, case):
    rp = make_client(first_party=True, post_logout_redirect_uris=["https://app.test/bye"])
    flow = Flow(app, rp).sign_in()
    hint = flow.tokens()["id_token"]
    params = {"id_token_hint": hint, "post_logout_redirect_uri": "https://app.test/bye"}
    if case == "no_hint":
        params.pop("id_token_hint")
    elif case == "altered_hint":
        params["id_token_hint"] = hint[:-4] + ("AAAA" if not hint.endswith("AAAA") else "BBBB")
    else:
        params["post_logout_redirect_uri"] = "https://evil.test/bye"
    response = rp_logout(flow, **params)
    assert response.status_code == 200 and "Location" not in response.headers
    assert "Sign out of Gatehouse?" in response.text
    assert flow.browser.get("/").status_code == 200


def test_revoking_an_access_token_ends_its_grant(app, flow):
    tokens = flow.tokens()
    form = flow.rp.auth() | {"token": tokens["access_token"], "token_type_hint": "access_token"}
    assert app.test_client().post("/oauth/revoke", data=form).status_code == 200
    assert flow.introspect(tokens["access_token"]) == {"active": False}
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert app.test_client().get("/oauth/userinfo", headers=bearer).status_code == 401


def test_userinfo_without_a_token_names_no_error_code(app):
    response = app.test_client().get("/oauth/userinfo")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_userinfo_needs_the_openid_scope(app, flow):
    """RFC 6750 §3.1: a live token without the scope the resource needs is insufficient_scope, 403."""
    tokens = flow.tokens(scope="email")
    response = app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert (response.status_code, response.json["error"]) == (403, "insufficient_scope")


@pytest.mark.parametrize("header", ["Basic Z2g6eA==", "Bearer", "Bearer   ", "bearer", "Token abc"])
def test_userinfo_without_a_bearer_token_is_a_bare_challenge(app, header):
    response = app.test_client().get("/oauth/userinfo", headers={"Authorization": header})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_repeated_parameters_are_refused(app, flow):
    code, verifier = flow.code()
    form = [("grant_type", "authorization_code"), ("code", code), ("code", code), ("code_verifier", verifier),
            ("redirect_uri", flow.rp.redirect_uri), *flow.rp.auth().items()]  # fmt: skip
    from werkzeug.datastructures import MultiDict

    response = app.test_client().post("/oauth/token", data=MultiDict(form))
    assert response.status_code == 400 and "Repeated parameter: code" in response.json["error_description"]
    assert flow.redeem(code, verifier).status_code == 200  # refused before the code was looked at


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
@pytest.mark.parametrize("name", ["café", 'a"b', "a\\b", "x\u2028y"])
def test_repeated_parameters_with_any_name_are_a_400(app, flow, path, name):
    """The error description names them in the characters RFC 6749 §5.2 allows (printable ASCII without " or \\)."""
    fields = urlencode({"token": "x", "grant_type": "refresh_token", "refresh_token": "x", **flow.rp.auth()})
    body = f"{quote(name)}=1&{quote(name)}=2&{fields}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = app.test_client().post(path, data=body, headers=headers)
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert response.json["error_description"] == f"Repeated parameter: {quote(name, safe='')}."


def test_token_endpoint_is_rate_limited_per_client(make_app, owner, make_client):
    app = make_app(TOKEN_RATE_LIMIT="3 per minute")
    statuses = [
        app.test_client().post("/oauth/token", data={"client_id": "gh_x", "client_secret": "guess"}).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_a_database_outage_is_a_503_not_reuse(app, flow, monkeypatch):
    import sqlalchemy.exc

    from app.oauth import models

    tokens = flow.tokens()

    def down(*_args, **_kwargs):
        raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    # Every write transaction of the token endpoint starts there: the fast path's rotation and the locked path.
    monkeypatch.setattr(models, "_begin_write", down)
    response = flow.refresh(tokens["refresh_token"])
    assert response.status_code == 503 and response.json["error"] == "temporarily_unavailable"
    monkeypatch.undo()
    assert flow.refresh(tokens["refresh_token"]).status_code == 200  # catalogue #33: the chain survived


def test_introspection_agrees_with_verify_once_the_portal_session_idles_out(app, flow, clock):
    tokens = flow.tokens()
    clock.advance(minutes=31)  # the access token (10 min) is expired too, so ask about the refresh token
    assert flow.introspect(tokens["refresh_token"]) == {"active": False}
    with app.app_context():
        from app.extensions import db

        assert db.session.execute(db.text("SELECT revoked_reason FROM user_sessions")).all() == [("idle_timeout",)]
