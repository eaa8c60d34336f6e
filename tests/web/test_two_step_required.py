"""The owner's requirement enforced on every request (DESIGN §9, issue 11 item 5; app/web/two_step_required.py): a
signed-in person of an account that requires two-step verification, without a second factor, reaches exactly what
setting one up needs; every other page sends them to /account/two-step, JSON calls get a 403 and htmx an
HX-Redirect. Through the real forms, CSRF on, on SQLite and PostgreSQL."""

import json
import re

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.accounts.models import Account, User
from app.extensions import db
from app.web.auth import cookie_free
from app.web.two_step_required import ALLOWED_ENDPOINTS, MESSAGE
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, account_with_users
from tests.factors.conftest import app_code, enrolled
from tests.passkeys.conftest import ORIGIN
from tests.passkeys.soft_authenticator import SoftAuthenticator

SET_UP = "/account/two-step"
SETUP_KEY = re.compile(r'<code class="setup-key" id="setup-key">([A-Z2-7 ]+)</code>')
# Values for the rules' variables: any will do, the guard answers before the view looks at them.
URL_VALUES = {"public_id": "x" * 22, "client_id": "some-client", "scope": "others", "filename": "css/app.css",
              "message_id": 1, "token": "ghp_" + "x" * 43, "person_id": 1, "invitation_id": 1}  # fmt: skip


def require_two_step(app: Flask, required: bool = True) -> None:
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        account.two_step_required = required
        db.session.commit()


@pytest.fixture
def guarded_app(make_app) -> Flask:
    """An account that requires two-step verification; nobody in it has a second factor yet."""
    app = make_app(ISSUER=ORIGIN)  # passkeys need a secure context: http://localhost
    with app.app_context():
        account_with_users()
    require_two_step(app)
    return app


def member_signed_in(app: Flask, next_url: str = "") -> FlaskClient:
    client = app.test_client()
    page = client.get("/login")
    answer = client.post("/login", data={"email": MEMBER_EMAIL, "password": "correct horse battery staple",
                                         "next": next_url, "csrf_token": csrf_token_from(page.text)})  # fmt: skip
    assert answer.status_code == 303 and answer.headers["Location"] == (next_url or "/")
    return client


@pytest.fixture
def member(guarded_app) -> FlaskClient:
    return member_signed_in(guarded_app)


def token(client: FlaskClient) -> str:
    return csrf_token_from(client.get(SET_UP).text)


def held(response) -> bool:
    return response.status_code == 303 and response.headers["Location"] == SET_UP


def refused(response) -> bool:
    """Sent to set-up (a page, a form), or a JSON call's 403."""
    if response.is_json:
        return response.status_code == 403 and response.json["error"] == "two_step_required"
    return held(response)


def json_only(app: Flask, rule) -> bool:
    view = app.view_functions[rule.endpoint]
    return rule.rule.startswith("/api/") or getattr(view, "gatehouse_json_api", False)


def rule_url(rule) -> str:
    """The rule's path with a value for each variable, whatever its converter (<path:filename>, <int:message_id>)."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda variable: str(URL_VALUES[variable.group(1)]), rule.rule)


def guarded_rules(app: Flask, method: str) -> list:
    return [r for r in app.url_map.iter_rules() if method in r.methods and r.endpoint not in ALLOWED_ENDPOINTS]


def test_the_next_password_sign_in_leads_to_set_up_before_the_page_asked_for(guarded_app):
    client = member_signed_in(guarded_app, next_url="/account/devices")
    answer = client.get("/account/devices")
    assert held(answer)
    page = client.get(SET_UP)
    assert page.status_code == 200
    assert "Your account requires two-step verification." in page.text
    assert "Set up an authenticator app or a passkey to continue" in page.text


def test_every_other_get_page_sends_to_set_up(guarded_app, member):
    rules = [r for r in guarded_rules(guarded_app, "GET") if not cookie_free(r.rule)]
    assert {"/", "/account/devices", "/account/apps", "/account", "/account/security", "/oauth/authorize"} <= {
        r.rule for r in rules
    }
    for rule in rules:
        answer = member.get(rule_url(rule), headers={"Accept": "text/html"})
        assert refused(answer), (rule.rule, answer.status_code, answer.headers.get("Location"))
        assert answer.is_json == json_only(guarded_app, rule)  # pages are sent to set-up, JSON calls get a 403


def test_every_other_change_is_refused_before_it_happens(guarded_app, member):
    csrf = token(member)
    rules = [r for r in guarded_app.url_map.iter_rules() if r.endpoint not in ALLOWED_ENDPOINTS]
    changes = [(r, m) for r in rules for m in sorted(r.methods - {"GET", "HEAD", "OPTIONS"})]
    assert len(changes) > 10
    for rule, method in changes:
        if cookie_free(rule.rule):
            continue  # the client apps' API and the provider's back channel read no cookie: nobody is signed in there
        answer = member.open(rule_url(rule), method=method, data={"csrf_token": csrf}, headers={"X-CSRFToken": csrf})
        assert refused(answer), (rule.rule, method, answer.status_code)
    with guarded_app.app_context():
        assert db.session.scalar(db.select(Account)).two_step_required  # the switch itself was refused too


def test_json_calls_get_a_clear_403(member):
    answer = member.get("/api/accounts/me/security")
    assert answer.status_code == 403
    assert answer.json == {"error": "two_step_required", "error_description": MESSAGE, "location": SET_UP}
    assert member.get("/account/devices", headers={"Accept": "application/json"}).status_code == 403


def test_htmx_requests_navigate_to_set_up(member):
    answer = member.get("/account/devices", headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer.headers["HX-Redirect"] == SET_UP
    assert answer.data == b""


def test_what_enrolment_needs_stays_reachable(guarded_app, member):
    csrf = token(member)
    assert member.get(SET_UP).status_code == 200
    assert member.get("/account/reauthenticate").status_code == 200
    assert member.get("/session/status").status_code == 200
    assert member.post("/session/extend", headers={"X-CSRFToken": csrf}).status_code == 200
    with member.get("/static/css/app.css") as stylesheet:
        assert stylesheet.status_code == 200
    assert member.get("/no/such/page").status_code == 404  # the error page, not a redirect
    assert member.delete(SET_UP, headers={"X-CSRFToken": csrf}).status_code == 405
    assert not held(member.get("/oauth/logout"))  # signing out from a client app
    out = member.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["Location"] == "/login"


def test_setting_up_the_authenticator_app_opens_the_rest_without_a_new_sign_in(guarded_app, clock, member):
    started = member.post("/account/two-step/authenticator/new", data={"csrf_token": token(member)})
    assert started.status_code == 303 and started.headers["Location"] == "/account/two-step/authenticator/setup"
    page = member.get("/account/two-step/authenticator/setup")
    assert page.status_code == 200
    key = SETUP_KEY.search(page.text).group(1).replace(" ", "")
    code = pyotp.TOTP(key).at(clock.now())
    done = member.post("/account/two-step/authenticator/setup", data={"code": code, "csrf_token": token(member)})
    assert done.status_code == 200 and "The authenticator app is on." in done.text
    assert member.get("/account/devices").status_code == 200
    assert "You can add and remove second steps, but not the last one." in member.get(SET_UP).text


def test_adding_a_passkey_opens_the_rest_too(guarded_app, member):
    headers = {"X-CSRFToken": token(member)}
    options = member.post("/account/passkeys/register/options", headers=headers, content_type="application/json")
    assert options.status_code == 200, options.text
    response = SoftAuthenticator().create(options.text, ORIGIN)
    added = member.post("/account/passkeys/register", data=json.dumps(response), headers=headers,
                        content_type="application/json")  # fmt: skip
    assert added.status_code == 200, added.text
    assert member.get("/account/devices").status_code == 200


def test_people_signed_in_before_the_switch_are_held_at_their_next_page(guarded_app):
    require_two_step(guarded_app, False)
    client = member_signed_in(guarded_app)
    assert client.get("/account/devices").status_code == 200
    require_two_step(guarded_app)
    assert held(client.get("/account/devices"))
    require_two_step(guarded_app, False)
    assert client.get("/account/devices").status_code == 200


def test_people_with_a_second_factor_are_not_held(guarded_app, clock):
    with guarded_app.app_context():
        enrolment = enrolled(User.by_email(MEMBER_EMAIL), clock.now())
    client = guarded_app.test_client()
    assert Auth(client).login(email=MEMBER_EMAIL).headers["Location"] == "/login/verify"
    verify = client.get("/login/verify")
    code = app_code(enrolment, clock.now())
    client.post("/login/verify", data={"code": code, "csrf_token": csrf_token_from(verify.text)})
    assert client.get("/account/devices").status_code == 200


def test_anonymous_requests_are_not_the_guards_business(guarded_app):
    client = guarded_app.test_client()
    assert client.get("/login").status_code == 200
    assert client.get("/account/devices").headers["Location"].startswith("/login")
