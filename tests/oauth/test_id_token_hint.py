"""id_token_hint at the authorization endpoint (OIDC Core 1.0 §3.1.2.1, §3.1.2.6): a hint for another user than
the signed-in one is login_required to prompt=none and the sign-in page otherwise; a hint we did not issue is
invalid_request; a hint for the signed-in user changes nothing."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from app.extensions import db
from app.oauth.models import AuthorizationCode
from tests.conftest import csrf_token_from
from tests.factories import MEMBER_EMAIL, PASSWORD
from tests.oauth.conftest import Flow, pkce, query_of


def codes(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuthorizationCode))


def claims_of(id_token: str) -> dict:
    body = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


@pytest.fixture
def owner_flow(app, owner, rp) -> Flow:
    """The owner is signed in to this browser."""
    return Flow(app, rp).sign_in()


@pytest.fixture
def member_hint(app, owner_flow) -> str:
    """An ID token we issued to the same app for another user (the member, in another browser)."""
    return Flow(app, owner_flow.rp).sign_in(email=MEMBER_EMAIL).tokens()["id_token"]


def test_prompt_none_with_a_hint_for_another_user_is_login_required(app, owner_flow, member_hint):
    before = codes(app)
    response = owner_flow.authorize(pkce()[1], prompt="none", id_token_hint=member_hint, state="s-9")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(owner_flow.rp.redirect_uri + "?")
    answer = query_of(location)
    assert answer["error"] == "login_required" and answer["state"] == "s-9"
    assert answer["iss"] == app.config["ISSUER"] and "code" not in answer
    assert codes(app) == before


@pytest.mark.parametrize("prompt", [None, "login", "consent"])
def test_a_hint_for_another_user_asks_to_sign_in_and_the_flow_continues_as_that_user(
    app, owner_flow, member_hint, prompt
):
    before = codes(app)
    verifier, challenge = pkce()
    response = owner_flow.authorize(challenge, prompt=prompt, id_token_hint=member_hint)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/oauth/authorize")
    assert codes(app) == before
    # The sign-in page, as a person would use it: the member signs in on this browser, and the request goes on.
    login = response.headers["Location"]
    next_url = parse_qs(urlsplit(login).query)["next"][0]
    page = owner_flow.browser.get(login)
    signed_in = owner_flow.browser.post(login, data={"csrf_token": csrf_token_from(page.text), "email": MEMBER_EMAIL,
                                                     "password": PASSWORD, "next": next_url})  # fmt: skip
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == next_url
    back = owner_flow.browser.get(next_url)
    if back.status_code == 200:  # prompt=consent: the member is asked, and approves
        back = owner_flow.consent(back)
    tokens = owner_flow.redeem(query_of(back.headers["Location"])["code"], verifier).json
    assert claims_of(tokens["id_token"])["sub"] == claims_of(member_hint)["sub"]


def test_a_hint_for_the_signed_in_user_changes_nothing(app, owner_flow, clock):
    hint = owner_flow.tokens()["id_token"]
    clock.advance(seconds=app.config["ID_TOKEN_TTL_SECONDS"] + 60)  # an expired hint is still a hint
    for prompt in ("none", None):
        verifier, challenge = pkce()
        answer = query_of(owner_flow.authorize(challenge, prompt=prompt, id_token_hint=hint).headers["Location"])
        tokens = owner_flow.redeem(answer["code"], verifier).json
        assert claims_of(tokens["id_token"])["sub"] == claims_of(hint)["sub"]


def test_a_hint_for_another_user_with_nobody_signed_in_asks_to_sign_in(app, owner, rp, member_hint):
    signed_out = Flow(app, rp)
    response = signed_out.authorize(pkce()[1], id_token_hint=member_hint)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/oauth/authorize")
    answer = query_of(signed_out.authorize(pkce()[1], id_token_hint=member_hint, prompt="none").headers["Location"])
    assert answer["error"] == "login_required"


def _foreign(hint: str) -> str:
    """The same claims and kid, signed by a key that is not ours."""
    header = json.loads(base64.urlsafe_b64decode(hint.split(".")[0] + "=="))
    return jwt.encode(header, claims_of(hint), RSAKey.generate_key(2048, parameters={"kid": header["kid"]}))


BAD_HINTS = {
    "altered_signature": lambda hint, tokens: hint[:-6] + ("AAAAAA" if not hint.endswith("AAAAAA") else "BBBBBB"),
    "foreign_key": lambda hint, tokens: _foreign(hint),
    "access_token": lambda hint, tokens: tokens["access_token"],
    "not_a_jwt": lambda hint, tokens: "not-a-jwt",
    "too_long": lambda hint, tokens: "a" * 20000,
}


@pytest.mark.parametrize("case", sorted(BAD_HINTS))
@pytest.mark.parametrize("prompt", ["none", None])
def test_a_hint_we_did_not_issue_is_invalid_request(app, owner_flow, case, prompt):
    tokens = owner_flow.tokens()
    bad = BAD_HINTS[case](tokens["id_token"], tokens)
    before = codes(app)
    response = owner_flow.authorize(pkce()[1], prompt=prompt, id_token_hint=bad, state="s-3")
    assert response.status_code == 302 and response.headers["Location"].startswith(owner_flow.rp.redirect_uri + "?")
    answer = query_of(response.headers["Location"])
    assert answer["error"] == "invalid_request" and "id_token_hint" in answer["error_description"]
    assert answer["state"] == "s-3" and answer["iss"] == app.config["ISSUER"]
    assert codes(app) == before
