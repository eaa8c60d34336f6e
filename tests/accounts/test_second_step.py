"""The second step of sign-in (DESIGN §9, issue 11): after a right password, an account with an authenticator app
asks for a code or a recovery code at /login/verify before any session exists; the session records how it signed in."""

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.extensions import db
from app.factors import recovery
from app.sessions.models import UserSession
from tests.conftest import csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.factors.conftest import app_code, enrolled, wrong_code
from tests.helpers import PORTAL_COOKIE, set_cookies


@pytest.fixture
def two_step(app, owner, clock):
    """The owner with a confirmed authenticator app and a set of recovery codes: (enrolment, codes)."""
    with app.app_context():
        user = db.session.get(User, owner.owner_id)
        enrolment = enrolled(user, clock.now())
        codes = recovery.generate(user, clock.now())
        db.session.commit()
    return enrolment, codes


def password_step(client, next_url=""):
    token = csrf_token_from(client.get("/login").text)
    return client.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token,
                                       "next": next_url})  # fmt: skip


def second_step(client, code):
    page = client.get("/login/verify")
    assert page.status_code == 200, page.status_code
    return client.post("/login/verify", data={"code": code, "csrf_token": csrf_token_from(page.text)})


def session_methods(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(UserSession.auth_methods).order_by(UserSession.id)))


def test_a_password_alone_opens_no_session_when_the_account_has_an_app(app, client, two_step):
    response = password_step(client)
    assert response.status_code == 303 and response.headers["Location"] == "/login/verify"
    assert PORTAL_COOKIE not in set_cookies(response)
    assert client.get("/").status_code == 302  # not signed in
    assert session_methods(app) == []


def test_the_app_code_signs_in_and_the_session_says_how(app, client, two_step, clock):
    enrolment, _codes = two_step
    password_step(client, next_url="/account/devices")
    response = second_step(client, app_code(enrolment, clock.now()))
    assert response.status_code == 303 and response.headers["Location"] == "/account/devices"
    assert PORTAL_COOKIE in set_cookies(response)
    assert session_methods(app) == ["pwd otp"]
    assert "Password + authenticator app" in client.get("/account/devices").text
    with app.app_context():
        success = db.session.scalars(select(AuditEvent).where(AuditEvent.tag == "account:sign_in:success")).one()
        assert success.details["methods"] == "pwd otp"


def test_a_wrong_code_keeps_the_user_on_the_step(app, client, two_step, clock):
    enrolment, _codes = two_step
    password_step(client)
    response = second_step(client, wrong_code(enrolment, clock.now()))
    assert response.status_code == 400 and "That code is not right" in response.text
    assert PORTAL_COOKIE not in set_cookies(response)
    assert second_step(client, app_code(enrolment, clock.now())).status_code == 303  # still pending


def test_a_code_is_accepted_once(app, client, two_step, clock):
    enrolment, _codes = two_step
    code = app_code(enrolment, clock.now())
    password_step(client)
    assert second_step(client, code).status_code == 303
    other = app.test_client()
    password_step(other)
    replay = second_step(other, code)
    assert replay.status_code == 400 and "already used" in replay.text


def test_a_recovery_code_works_once_in_the_same_field(app, client, two_step):
    _enrolment, codes = two_step
    password_step(client)
    assert second_step(client, codes[0].upper().replace("-", " ")).status_code == 303
    assert session_methods(app) == ["pwd rec"]
    assert "Password + recovery code" in client.get("/account/devices").text
    other = app.test_client()
    password_step(other)
    assert second_step(other, codes[0]).status_code == 400


def test_the_step_expires_after_five_minutes(app, client, two_step, clock):
    password_step(client)
    clock.advance(minutes=5, seconds=1)
    response = client.get("/login/verify")
    assert response.status_code == 303 and "reason=second_step_expired" in response.headers["Location"]
    assert "not finished in time" in client.get(response.headers["Location"]).text
    assert client.get("/login/verify").status_code == 303  # gone, not only expired


def test_a_password_change_meanwhile_voids_the_step(app, client, two_step, clock):
    password_step(client)
    with app.app_context():
        from app.security.passwords import hash_password

        user = User.by_email(OWNER_EMAIL)
        assert user is not None
        user.password_hash = hash_password("a brand new passphrase")
        db.session.commit()
    assert client.get("/login/verify").status_code == 303


def test_verify_without_a_password_step_goes_to_sign_in(client, owner):
    response = client.get("/login/verify")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")


def test_wrong_codes_are_rate_limited_per_user(app, client, two_step, clock):
    enrolment, _codes = two_step
    password_step(client)
    statuses = [second_step(client, wrong_code(enrolment, clock.now())).status_code for _ in range(6)]
    assert statuses[-1] == 429 and statuses[:5] == [400] * 5


def test_an_account_without_a_second_factor_signs_in_with_the_password(app, client, owner):
    response = password_step(client)
    assert response.status_code == 303 and PORTAL_COOKIE in set_cookies(response)
    assert session_methods(app) == ["pwd"]
    assert "Signed in with" in client.get("/account/devices").text
