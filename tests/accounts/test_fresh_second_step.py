"""Sensitive changes need a fresh sign-in with the second step when the account has one (DESIGN §9, issue 11 item 4):
re-authentication asks for the code too (or takes a passkey that verified the user), and a recent password-only
sign-in is not fresh enough."""

import json

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.sessions.models import UserSession
from tests.accounts.test_reauthentication import reauthenticate
from tests.conftest import Auth, csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.factors.conftest import app_code, enrolled, wrong_code
from tests.passkeys.conftest import ORIGIN, Portal
from tests.passkeys.soft_authenticator import SoftAuthenticator


@pytest.fixture
def app(make_app):
    return make_app(ISSUER=ORIGIN)


@pytest.fixture
def signed_in_then_enrolled(app, client, owner, clock):
    """Signed in with the password alone, then the authenticator app was set up (the session is 'pwd')."""
    Auth(client).login()
    with app.app_context():
        enrolment = enrolled(User.by_email(OWNER_EMAIL), clock.now())
    return enrolment


def methods_now(app) -> str:
    with app.app_context():
        return db.session.scalars(select(UserSession.auth_methods)).one()


def confirm(client, code: str | None):
    location = "/account/reauthenticate?next=/account"
    token = csrf_token_from(client.get(location).text)
    form = {"csrf_token": token, "password": PASSWORD, "next": "/account"} | ({"code": code} if code else {})
    return client.post("/account/reauthenticate", data=form)


def test_a_password_only_session_is_not_fresh_for_an_account_with_an_app(app, client, signed_in_then_enrolled):
    response = client.get("/account")
    assert response.status_code == 303 and response.headers["Location"].startswith("/account/reauthenticate")
    assert client.get("/account/devices/sign-out-others").status_code == 303


def test_reauthentication_asks_for_the_code_too(app, client, signed_in_then_enrolled, clock):
    page = client.get("/account/reauthenticate?next=/account")
    assert "authenticator app" in page.text and 'name="code"' in page.text
    missing = confirm(client, None)
    assert missing.status_code == 400 and "Enter the code from your authenticator app" in missing.text
    wrong = confirm(client, wrong_code(signed_in_then_enrolled, clock.now()))
    assert wrong.status_code == 400 and methods_now(app) == "pwd"
    right = confirm(client, app_code(signed_in_then_enrolled, clock.now()))
    assert right.status_code == 303 and right.headers["Location"] == "/account"
    assert methods_now(app) == "pwd otp"
    assert client.get("/account").status_code == 200


def test_fresh_with_the_second_step_lasts_the_window(app, client, signed_in_then_enrolled, clock):
    confirm(client, app_code(signed_in_then_enrolled, clock.now()))
    clock.advance(minutes=app.config["FRESH_AUTH_MINUTES"], seconds=1)
    assert client.get("/account").status_code == 303


def test_an_account_without_a_second_factor_confirms_with_the_password(app, client, owner):
    Auth(client).login()
    page = client.get("/account/reauthenticate?next=/account")
    assert 'name="code"' not in page.text
    assert reauthenticate(client, "/account/reauthenticate?next=/account").status_code == 303


def test_a_passkey_that_verified_the_user_confirms_both_steps(app, client, owner, clock):
    Auth(client).login()
    authenticator = SoftAuthenticator()
    with app.app_context():
        owner_row = User.by_email(OWNER_EMAIL)
        Portal(clock, owner_row, owner_row).register(owner_row, authenticator)
    assert client.get("/account").status_code == 303  # a passkey is a second factor: not fresh any more
    page = client.get("/account/reauthenticate?next=/account")
    assert "Use a passkey" in page.text
    headers = {"X-CSRFToken": csrf_token_from(page.text), "Content-Type": "application/json"}
    options = client.post("/account/reauthenticate/passkey/options", data="{}", headers=headers)
    answer = json.dumps(authenticator.get(options.text, ORIGIN))
    response = client.post("/account/reauthenticate/passkey?next=/account", data=answer, headers=headers)
    assert response.status_code == 200 and response.json == {"redirect": "/account"}
    assert methods_now(app) == "hwk user"
    assert client.get("/account").status_code == 200
