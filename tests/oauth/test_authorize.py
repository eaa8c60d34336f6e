"""The authorization endpoint: exact redirect URIs, PKCE S256 only, prompt, max_age, consent (#13-#15, #18-#21)."""

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.oauth.models import AuthorizationCode
from app.sessions.models import UserSession
from tests.oauth.conftest import Flow, csrf_of, pkce, query_of

REGISTERED = ["https://app.test/cb", "https://app.test/q?foo=bar"]

REFUSED_REDIRECTS = [
    "https://app.test/cb/", "https://app.test/cb/x", "https://app.test/CB", "https://app.test/cb/../cb",
    "https://app.test/cb%2F..", "https://app.test/%63b", "https://app.test/cb?x=1", "https://app.test/cb#f",
    "HTTPS://app.test/cb", "https://APP.test/cb", "https://app.test:443/cb", "http://app.test/cb",
    "https://app.test.evil.test/cb", "https://evil.test@app.test/cb", "https://app.test/cb@evil.test",
    "https://app.test/q?foo=bara", "https://app.test/q?foo=bar&x=1", "https://app.test/q", "https://app.test/cb ",
    " https://app.test/cb", "https://\u0430pp.test/cb", "https://xn--pp-7kc.test/cb", "https://app.test/cb%20",
    "https://app.test//cb", "https://app.test/cb;x", "https://app.test./cb", "https://app.test/cb?",
    "javascript:alert(1)", "//app.test/cb", "/cb", "https://app.test/Cb", "https://app.test:8443/cb",
    "https://app.test/cb\\", "https://app.test/cb%00",
]  # fmt: skip


def codes(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuthorizationCode))


@pytest.fixture
def third_party(app, owner, make_client):
    return Flow(app, make_client(REGISTERED)).sign_in()


@pytest.mark.parametrize("redirect_uri", REFUSED_REDIRECTS)
def test_redirect_uri_must_match_exactly(app, third_party, redirect_uri):
    response = third_party.authorize(pkce()[1], redirect_uri=redirect_uri, prompt="consent")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "has not registered" in response.text
    assert codes(app) == 0


@pytest.mark.parametrize("redirect_uri", REGISTERED)
def test_registered_redirect_uris_work(app, owner, make_client, redirect_uri):
    flow = Flow(app, make_client(REGISTERED, first_party=True)).sign_in()
    response = flow.authorize(pkce()[1], redirect_uri=redirect_uri)
    assert response.headers["Location"].startswith(redirect_uri)
    assert "code" in query_of(response.headers["Location"])


def test_loopback_clients_may_use_any_port_but_localhost_is_not_127(app, owner, make_client):
    flow = Flow(app, make_client(["http://127.0.0.1/cb"], public=True, first_party=True)).sign_in()
    assert flow.authorize(pkce()[1], redirect_uri="http://127.0.0.1:53111/cb").status_code == 302
    assert flow.authorize(pkce()[1], redirect_uri="http://localhost:53111/cb").status_code == 400


def test_missing_redirect_uri_is_a_page_not_the_default(app, third_party):
    response = third_party.authorize(pkce()[1], redirect_uri=None)
    assert response.status_code == 400 and "redirect_uri is required" in response.text


@pytest.mark.parametrize("client_id", [None, "", "gh_unknown", "<script>alert(1)</script>"])
def test_unknown_client_is_a_page(app, third_party, client_id):
    response = third_party.authorize(pkce()[1], client_id=client_id)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "<script>alert(1)</script>" not in response.text


def test_duplicate_client_id_is_a_page(app, third_party):
    url = f"/oauth/authorize?client_id={third_party.rp.client_id}&client_id=other&redirect_uri=https://app.test/cb"
    assert third_party.browser.get(url).status_code == 400


def error_of(response) -> dict:
    assert response.status_code in (302, 303), response.text[:300]
    return query_of(response.headers["Location"])


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "id_token"}, "unsupported_response_type"),
        ({"response_type": "id_token token"}, "unsupported_response_type"),
        ({"response_type": "code token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"request": "eyJ..."}, "request_not_supported"),
        ({"request_uri": "https://x"}, "request_uri_not_supported"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"device_id": "x" * 129}, "invalid_request"),
        ({"device_id": "has space"}, "invalid_request"),
    ],
)
def test_bad_requests_go_back_to_the_app_with_an_error(app, third_party, params, error):
    _, challenge = pkce()
    answer = error_of(third_party.authorize(challenge, **params))
    assert answer["error"] == error
    assert answer["state"] == "st-1" and answer["iss"] == app.config["ISSUER"]
    assert codes(app) == 0


def test_public_clients_need_pkce_too(app, owner, make_client):
    flow = Flow(app, make_client(public=True, first_party=True)).sign_in()
    assert error_of(flow.authorize(None))["error"] == "invalid_request"
    tokens = flow.tokens()
    assert tokens["refresh_token"].startswith("ghr_")


def test_header_injection_in_state_is_encoded(third_party):
    state = "x\r\nSet-Cookie: evil=1"
    response = third_party.authorize(pkce()[1], state=state, prompt="none")
    assert "\r" not in response.headers["Location"] and "%0D%0A" in response.headers["Location"]
    assert "evil" not in response.headers.get("Set-Cookie", "")
    assert query_of(response.headers["Location"])["state"] == state


def test_third_party_consent_names_the_app_and_scopes(app, third_party):
    page = third_party.authorize(pkce()[1])
    assert page.status_code == 200
    assert "Allow Example App to use your Gatehouse account?" in page.text
    for words in ("Your name", "Your email address", "Confirm that it is you"):
        assert words in page.text
    answer = query_of(third_party.consent(page).headers["Location"])
    assert "code" in answer and answer["state"] == "st-1"


def test_deny_sends_access_denied(app, third_party):
    page = third_party.authorize(pkce()[1])
    answer = query_of(third_party.consent(page, decision="deny").headers["Location"])
    assert answer["error"] == "access_denied" and codes(app) == 0


def test_consent_needs_its_csrf_token(app, third_party):
    page = third_party.authorize(pkce()[1])
    forged = third_party.browser.post("/oauth/consent", data={"client_id": third_party.rp.client_id,
                                                              "decision": "approve"})  # fmt: skip
    assert forged.status_code == 400 and codes(app) == 0
    assert page.status_code == 200


def test_prompt_none_signed_out_is_login_required(app, owner, make_client):
    flow = Flow(app, make_client(first_party=True))
    answer = error_of(flow.authorize(pkce()[1], prompt="none"))
    assert answer["error"] == "login_required"


def test_prompt_none_without_consent_is_consent_required(third_party):
    assert error_of(third_party.authorize(pkce()[1], prompt="none"))["error"] == "consent_required"


def test_prompt_none_with_consent_returns_a_code_and_no_new_session(app, third_party):
    third_party.code()  # consents once
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(UserSession))
    answer = query_of(third_party.authorize(pkce()[1], prompt="none").headers["Location"])
    assert "code" in answer
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(UserSession)) == before


def test_signed_out_user_is_sent_to_login_and_back(app, owner, make_client):
    flow = Flow(app, make_client(first_party=True))
    response = flow.authorize(pkce()[1])
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/oauth/authorize")


def test_prompt_login_and_max_age_ask_for_the_password_again(app, third_party, clock):
    response = third_party.authorize(pkce()[1], prompt="login")
    assert response.headers["Location"].startswith("/account/reauthenticate?next=/oauth/authorize")
    assert "prompt" not in response.headers["Location"]
    clock.advance(seconds=2)
    assert third_party.authorize(pkce()[1], max_age="1").headers["Location"].startswith("/account/reauthenticate")
    assert third_party.authorize(pkce()[1], max_age="10000").status_code == 200  # consent page, no re-auth


def test_reauthentication_moves_auth_time(app, owner, make_client, clock):
    from urllib.parse import parse_qs, urlsplit

    from joserfc import jwt
    from joserfc.jwk import KeySet

    from tests.conftest import csrf_token_from
    from tests.factories import PASSWORD

    flow = Flow(app, make_client(first_party=True)).sign_in()
    first = flow.tokens()
    clock.advance(minutes=5)
    redirect = flow.authorize(pkce()[1], prompt="login").headers["Location"]
    next_url = parse_qs(urlsplit(redirect).query)["next"][0]
    token = csrf_token_from(flow.browser.get(redirect).text)
    flow.browser.post(redirect, data={"csrf_token": token, "password": PASSWORD, "next": next_url})
    second = flow.tokens()
    keys = KeySet.import_key_set(app.test_client().get("/oauth/jwks").json)

    def auth_time(id_token: str) -> int:
        return jwt.decode(id_token, keys, algorithms=["RS256"]).claims["auth_time"]

    assert auth_time(second["id_token"]) == auth_time(first["id_token"]) + 300


def test_post_authorization_requests_are_accepted(app, owner, make_client):
    flow = Flow(app, make_client(first_party=True)).sign_in()
    _, challenge = pkce()
    form = {"response_type": "code", "client_id": flow.rp.client_id, "redirect_uri": flow.rp.redirect_uri,
            "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    response = flow.browser.post("/oauth/authorize", data=form)
    assert response.status_code == 303 and "code=" in response.headers["Location"]
    assert csrf_of(flow.browser)
