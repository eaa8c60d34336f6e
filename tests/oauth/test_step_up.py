"""Step-up (DESIGN §9, issue 11 item 7, in the spirit of RFC 9470): a client asking acr_values=urn:gatehouse:acr:mfa
from a session that signed in with one factor gets the second step asked first; prompt=none gets interaction_required;
the ID token then says acr mfa."""

import json
from base64 import urlsafe_b64decode
from urllib.parse import parse_qs, urlsplit

import pytest

from app.accounts.models import User
from app.sessions.methods import ACR_MFA, ACR_PASSWORD
from tests.conftest import csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.factors.conftest import app_code, enrolled
from tests.oauth.conftest import Flow, pkce, query_of

MFA = {"acr_values": ACR_MFA}


@pytest.fixture
def flow(app, owner, make_client):
    return Flow(app, make_client(first_party=True)).sign_in()


@pytest.fixture
def enrolment(app, flow, clock):
    """The authenticator app set up after the password-only sign-in: the session is one factor, the user has two."""
    with app.app_context():
        return enrolled(User.by_email(OWNER_EMAIL), clock.now())


def claims_of(id_token: str) -> dict:
    """The claims as sent (signature checks are tests/oauth_e2e's, by independent libraries)."""
    payload = id_token.split(".")[1]
    return json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_one_factor_session_is_asked_for_the_second_step(flow, enrolment):
    response = flow.authorize(pkce()[1], **MFA)
    assert response.status_code == 302 and response.headers["Location"].startswith("/account/reauthenticate")
    assert "acr_values" in response.headers["Location"]  # carried through, so the answer can be checked again


def test_prompt_none_answers_interaction_required(flow, enrolment):
    answer = query_of(flow.authorize(pkce()[1], prompt="none", **MFA).headers["Location"])
    assert answer["error"] == "interaction_required" and answer["state"] == "st-1"


def test_after_the_second_step_the_code_is_issued_and_the_id_token_says_mfa(app, flow, enrolment, clock):
    location = flow.authorize(pkce()[1], **MFA).headers["Location"]
    page = flow.browser.get(location)
    form = {"csrf_token": csrf_token_from(page.text), "password": PASSWORD, "code": app_code(enrolment, clock.now()),
            "next": parse_qs(urlsplit(location).query)["next"][0]}  # fmt: skip
    back = flow.browser.post("/account/reauthenticate", data=form)
    assert back.status_code == 303 and back.headers["Location"].startswith("/oauth/authorize")
    tokens = flow.tokens(**MFA)
    claims = claims_of(tokens["id_token"])
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp"]


def test_a_user_without_a_second_factor_gets_the_code_and_acr_pwd(flow):
    claims = claims_of(flow.tokens(**MFA)["id_token"])
    assert claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]


def test_without_acr_values_a_one_factor_session_is_not_asked(flow, enrolment):
    assert claims_of(flow.tokens()["id_token"])["acr"] == ACR_PASSWORD


def test_acr_values_must_be_printable_and_short(flow):
    answer = query_of(flow.authorize(pkce()[1], acr_values="x" * 600).headers["Location"])
    assert answer["error"] == "invalid_request"


@pytest.fixture
def required(app, flow):
    """The owner's switch on, and this user (signed in with the password) without a second factor."""
    from app.extensions import db

    with app.app_context():
        User.by_email(OWNER_EMAIL).account.two_step_required = True
        db.session.commit()


def test_a_user_held_for_set_up_is_interaction_required_to_prompt_none(flow, required):
    answer = query_of(flow.authorize(pkce()[1], prompt="none").headers["Location"])
    assert answer["error"] == "interaction_required" and answer["state"] == "st-1"


def test_a_user_held_for_set_up_is_sent_to_set_it_up_otherwise(flow, required):
    response = flow.authorize(pkce()[1])
    assert response.status_code == 303 and response.headers["Location"] == "/account/two-step"
