"""Signing in with a passkey over HTTP (DESIGN §9, issue 11 item 3): without a password when the authenticator
verified the user, and as the second step after the password; each records how it signed in."""

import json

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.sessions.models import UserSession
from tests.conftest import csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.helpers import PORTAL_COOKIE, set_cookies
from tests.passkeys.conftest import ORIGIN, portal_in
from tests.passkeys.soft_authenticator import SoftAuthenticator


@pytest.fixture
def app(make_app):
    return make_app(ISSUER=ORIGIN)


@pytest.fixture
def registered(app, clock):
    """The owner with a passkey on a user-verifying authenticator."""
    authenticator = SoftAuthenticator()
    with app.app_context():
        portal_in(clock).register(User.by_email(OWNER_EMAIL), authenticator)
    return authenticator


def ceremony(client, options_url, answer_url, authenticator, page="/login", **overrides):
    token = csrf_token_from(client.get(page).text)
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    options = client.post(options_url, data="{}", headers=headers)
    assert options.status_code == 200, options.text
    answer = authenticator.get(options.text, ORIGIN, **overrides)
    return client.post(answer_url, data=json.dumps(answer), headers=headers)


def methods_of(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(UserSession.auth_methods)))


def test_a_verified_passkey_signs_in_without_a_password(app, registered):
    client = app.test_client()
    response = ceremony(client, "/login/passkey/options", "/login/passkey?next=/account/devices", registered)
    assert response.status_code == 200 and response.json == {"redirect": "/account/devices"}
    assert PORTAL_COOKIE in set_cookies(response)
    assert methods_of(app) == ["hwk user"]
    assert "Passkey" in client.get("/account/devices").text


def test_a_passkey_without_user_verification_is_not_enough_alone(app, clock):
    authenticator = SoftAuthenticator(user_verified=False)
    with app.app_context():
        portal_in(clock).register(User.by_email(OWNER_EMAIL), authenticator)
    response = ceremony(app.test_client(), "/login/passkey/options", "/login/passkey", authenticator)
    assert response.status_code == 400 and response.json["error"] == "user_not_verified"
    assert methods_of(app) == []


def test_a_replayed_assertion_is_refused(app, registered):
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    options = client.post("/login/passkey/options", data="{}", headers=headers)
    body = json.dumps(registered.get(options.text, ORIGIN))
    assert client.post("/login/passkey", data=body, headers=headers).status_code == 200
    other = app.test_client()
    token = csrf_token_from(other.get("/login").text)
    replay = other.post("/login/passkey", data=body, headers={"X-CSRFToken": token, "Content-Type": "application/json"})
    assert replay.status_code == 400 and methods_of(app) == ["hwk user"]


@pytest.mark.parametrize("body", ["", "null", "[]", '{"id": 1}', "{" * 5000, '{"response": "\\u0000"}'])
def test_malformed_answers_are_clear_400s(app, registered, body):
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    client.post("/login/passkey/options", data="{}", headers=headers)
    response = client.post("/login/passkey", data=body, headers=headers)
    assert response.status_code == 400 and response.json["error"]


def test_the_json_calls_need_the_csrf_token(app, registered):
    response = app.test_client().post("/login/passkey/options", data="{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_a_passkey_is_the_second_step_after_the_password(app, registered):
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    step = client.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token})
    assert step.status_code == 303 and step.headers["Location"] == "/login/verify"
    assert "Use a passkey" in client.get("/login/verify").text
    response = ceremony(
        client, "/login/verify/passkey/options", "/login/verify/passkey", registered, page="/login/verify"
    )
    assert response.status_code == 200 and response.json == {"redirect": "/"}
    assert methods_of(app) == ["pwd hwk user"]
    assert "Password + passkey" in client.get("/account/devices").text


def test_the_second_step_needs_a_pending_sign_in(app, registered):
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    response = client.post("/login/verify/passkey/options", data="{}", headers=headers)
    assert response.status_code == 400 and response.json["error"] == "sign_in_expired"
