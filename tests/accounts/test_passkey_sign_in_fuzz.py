"""No body sent to the passkey sign-in ceremonies ends in a 5xx (DESIGN §8, issue 11): /login/passkey,
/login/verify/passkey and /account/reauthenticate/passkey answer any malformed, deep, huge or NUL-laden body with a
JSON refusal, and nobody is signed in by it."""

import pytest
from hypothesis import given
from sqlalchemy import func, select

from app.accounts.models import User
from app.extensions import db
from app.sessions.models import UserSession
from tests.accounts.test_passkey_sign_in import registered  # noqa: F401 (fixture)
from tests.conftest import Auth, csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.passkeys.conftest import ORIGIN, Portal
from tests.passkeys.soft_authenticator import SoftAuthenticator
from tests.passkeys.test_views_fuzz import DEEP, FUZZ, HUGE, NUL, assert_json_refusal, bodies


@pytest.fixture
def app(make_app):
    return make_app(ISSUER=ORIGIN, PASSKEY_SIGN_IN_RATE_LIMIT="100000 per minute")


def sessions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(UserSession))


def ceremony_post(client, options_url: str, answer_url: str, body, page: str):
    headers = {"X-CSRFToken": csrf_token_from(client.get(page).text), "Content-Type": "application/json"}
    assert client.post(options_url, data="{}", headers=headers).status_code == 200
    return client.post(answer_url, data=body, headers=headers)


@FUZZ
@given(body=bodies)
def test_passwordless_sign_in_refuses_any_body_as_json(app, registered, body):  # noqa: F811
    answer = ceremony_post(app.test_client(), "/login/passkey/options", "/login/passkey", body, "/login")
    assert_json_refusal(answer, (400, 413))
    assert sessions(app) == 0


@pytest.mark.parametrize("body", DEEP + HUGE + NUL + ["", "null", "[]", '"x"', "1e999999"])
def test_the_second_step_refuses_hostile_bodies_as_json(app, registered, body):  # noqa: F811
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    client.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token})
    urls = ("/login/verify/passkey/options", "/login/verify/passkey")
    assert_json_refusal(ceremony_post(client, *urls, body, "/login/verify"), (400, 413))
    assert sessions(app) == 0


@pytest.mark.parametrize("body", DEEP + HUGE + NUL + ["", "null", "[]", '"x"', "1e999999"])
def test_confirming_with_a_passkey_refuses_hostile_bodies_as_json(app, owner, clock, body):
    client = app.test_client()
    Auth(client).login()  # signed in with the password, then a passkey is added
    with app.app_context():
        user = User.by_email(OWNER_EMAIL)
        Portal(clock, user, user).register(user, SoftAuthenticator())
    urls = ("/account/reauthenticate/passkey/options", "/account/reauthenticate/passkey")
    answer = ceremony_post(client, *urls, body, "/account/reauthenticate?next=/account")
    assert_json_refusal(answer, (400, 413))
    with app.app_context():
        assert db.session.scalars(select(UserSession.auth_methods)).one() == "pwd"  # not confirmed by it
