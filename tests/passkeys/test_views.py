"""The passkey endpoints of a signed-in user (issue 11 item 3) through HTTP, CSRF on, on SQLite and PostgreSQL: the
registration ceremony as JSON (answered by the software authenticator), rename and remove as the page's forms."""

import json
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.accounts.models import User
from app.audit.tags import EventTag
from app.extensions import db
from app.factors import recovery
from app.passkeys.errors import CeremonyRefused
from app.passkeys.models import PasskeyCredential
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, account_with_users
from tests.passkeys.conftest import ORIGIN, events
from tests.passkeys.soft_authenticator import SoftAuthenticator

OPTIONS = "/account/passkeys/register/options"
REGISTER = "/account/passkeys/register"
PAGE = "/account/two-step"
CHROME_ON_MACOS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@dataclass
class Browser:
    """A signed-in browser: what static/js/passkeys.js and the page's forms send."""

    app: Flask
    client: FlaskClient
    clock: object

    def token(self) -> str:
        return csrf_token_from(self.client.get(PAGE).text)

    def json_post(self, path: str, body: str | bytes = "{}", token: str | None = None, **headers):
        headers = {"X-CSRFToken": self.token() if token is None else token, "User-Agent": CHROME_ON_MACOS, **headers}
        return self.client.post(path, data=body, headers=headers, content_type="application/json")

    def options(self) -> str:
        answer = self.json_post(OPTIONS)
        assert answer.status_code == 200, answer.text
        assert answer.mimetype == "application/json"
        return answer.text

    def add(self, authenticator: SoftAuthenticator, origin: str = ORIGIN):
        response = authenticator.create(self.options(), ORIGIN, client_origin=origin)
        return self.json_post(REGISTER, json.dumps(response))

    def form_post(self, path: str, **fields):
        return self.client.post(path, data={"csrf_token": self.token(), **fields})

    def passkeys(self) -> list[PasskeyCredential]:
        with self.app.app_context():
            return list(db.session.scalars(db.select(PasskeyCredential).order_by(PasskeyCredential.id)))


def signed_in(app: Flask, clock, email: str | None = None) -> Browser:
    client = app.test_client()
    answer = Auth(client).login(**({"email": email} if email else {}))
    assert answer.status_code == 303
    return Browser(app, client, clock)


@pytest.fixture
def browser(web_app, clock) -> Browser:
    return signed_in(web_app, clock)


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


def refusal(answer, reason: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json == {"error": reason, "error_description": CeremonyRefused.MESSAGES[reason]}


def test_options_ask_this_portal_for_a_discoverable_passkey(browser):
    options = json.loads(browser.options())
    assert options["rp"] == {"id": "localhost", "name": "Gatehouse"}
    assert options["user"]["name"] == OWNER_EMAIL
    assert options["authenticatorSelection"]["residentKey"] == "preferred"


def test_a_passkey_is_added_named_after_the_device_and_brings_recovery_codes(browser, authenticator):
    answer = browser.add(authenticator)
    assert answer.status_code == 200, answer.text
    [passkey] = browser.passkeys()
    assert answer.json["passkey"] == {"id": passkey.public_id, "name": "Chrome on macOS"}
    codes = answer.json["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10  # the first second factor: shown once, here
    page = browser.client.get(PAGE).text
    assert "Passkey “Chrome on macOS” added." in page  # the notice the reload shows
    assert '<h3 class="device__name">Chrome on macOS</h3>' in page
    second = browser.add(SoftAuthenticator())
    assert second.json["recovery_codes"] is None  # the codes the user holds work with every factor
    with browser.app.app_context():
        assert len(events(EventTag.FACTOR_ADD)) == 2


def test_the_listed_passkey_says_when_it_was_added_and_last_used(browser, authenticator, clock):
    browser.add(authenticator)
    clock.advance(minutes=20)
    page = browser.client.get(PAGE).text
    added = '<time datetime="2026-01-05T09:00:00+00:00" title="Mon 05 Jan 2026, 09:00 UTC">20 min ago</time>'
    assert f"<dt>Added</dt><dd>{added}</dd>" in page
    assert "<dt>Last used</dt><dd>Never</dd>" in page


def test_a_response_cannot_be_sent_twice(browser, authenticator):
    response = authenticator.create(browser.options(), ORIGIN)
    assert browser.json_post(REGISTER, json.dumps(response)).status_code == 200
    refusal(browser.json_post(REGISTER, json.dumps(response)), "challenge_unknown")
    assert len(browser.passkeys()) == 1


def test_a_response_without_options_first_is_refused(browser, authenticator):
    response = authenticator.create(browser.options(), ORIGIN)
    browser.json_post(REGISTER, "{}")  # spends the handle the session held
    refusal(browser.json_post(REGISTER, json.dumps(response)), "challenge_unknown")


def test_a_response_from_another_site_is_refused_and_audited(browser, authenticator):
    refusal(browser.add(authenticator, origin="http://127.0.0.1:5001"), "origin")
    assert browser.passkeys() == []
    with browser.app.app_context():
        assert [e.details["reason"] for e in events(EventTag.FACTOR_FAILURE)] == ["origin"]


def test_another_users_ceremony_cannot_be_finished(web_app, clock, authenticator):
    owner, member = signed_in(web_app, clock), signed_in(web_app, clock, MEMBER_EMAIL)
    response = authenticator.create(owner.options(), ORIGIN)
    member.options()
    refusal(member.json_post(REGISTER, json.dumps(response)), "challenge_mismatch")


@pytest.mark.parametrize("path", [OPTIONS, REGISTER])
def test_json_endpoints_need_the_csrf_header(browser, path):
    answer = browser.json_post(path, token="")
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_request"
    assert "did not come from this site" in answer.json["error_description"]
    assert browser.json_post(path, token="forged").status_code == 400


@pytest.mark.parametrize("path", [OPTIONS, REGISTER])
def test_json_endpoints_refuse_other_sites(browser, path):
    assert browser.json_post(path, Origin="http://127.0.0.1:5001").status_code == 403


@pytest.mark.parametrize("path", [OPTIONS, REGISTER])
def test_json_endpoints_answer_json_when_signed_out(web_app, path):
    client = web_app.test_client()
    token = csrf_token_from(client.get("/login").text)
    answer = client.post(path, json={}, headers={"X-CSRFToken": token})
    assert (answer.status_code, answer.json["error"]) == (401, "login_required")


@pytest.mark.parametrize("path", [OPTIONS, REGISTER])
def test_only_post(browser, path):
    assert browser.client.get(path).status_code == 405


def test_the_response_must_be_json(browser, authenticator):
    browser.options()
    answer = browser.json_post(REGISTER, "id=x", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code in (400, 415) and answer.is_json


def test_starting_ceremonies_is_rate_limited_per_user(make_app, clock):
    app = make_app(ISSUER=ORIGIN, PASSKEY_RATE_LIMIT="3 per minute")
    with app.app_context():
        account_with_users()
    owner, member = signed_in(app, clock), signed_in(app, clock, MEMBER_EMAIL)
    for _ in range(3):
        owner.options()
    limited = owner.json_post(OPTIONS)
    assert limited.status_code == 429 and limited.json["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    member.options()  # another user's budget is their own


def test_an_unusable_relying_party_is_a_clear_refusal(make_app, clock):
    app = make_app(ISSUER="http://127.0.0.1:5000")
    with app.app_context():
        account_with_users()
    answer = signed_in(app, clock).json_post(OPTIONS)
    assert answer.status_code == 400
    assert answer.json["error"] == "unavailable"
    assert answer.json["error_description"].startswith("Passkeys need https (or http on localhost)")


def test_rename(browser, authenticator):
    browser.add(authenticator)
    [passkey] = browser.passkeys()
    answer = browser.form_post(f"/account/passkeys/{passkey.public_id}/rename", name="  Work   laptop ")
    assert (answer.status_code, answer.headers["Location"]) == (303, PAGE)
    assert [p.name for p in browser.passkeys()] == ["Work laptop"]
    assert "Passkey renamed to “Work laptop”." in browser.client.get(PAGE).text


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "1 to 64 characters"), ("x" * 65, "1 to 64 characters"), ("a\x00b", "not allowed")],
)
def test_a_bad_name_is_refused_with_its_reason(browser, authenticator, name, message):
    browser.add(authenticator)
    [passkey] = browser.passkeys()
    answer = browser.form_post(f"/account/passkeys/{passkey.public_id}/rename", name=name)
    assert answer.status_code == 303
    assert message in browser.client.get(PAGE).text
    assert [p.name for p in browser.passkeys()] == ["Chrome on macOS"]


def test_rename_needs_the_csrf_token(browser, authenticator):
    browser.add(authenticator)
    [passkey] = browser.passkeys()
    answer = browser.client.post(f"/account/passkeys/{passkey.public_id}/rename", data={"name": "x"})
    assert answer.status_code == 400
    assert [p.name for p in browser.passkeys()] == ["Chrome on macOS"]


@pytest.mark.parametrize("action", ["rename", "remove"])
def test_another_users_passkey_is_not_found(web_app, clock, authenticator, action):
    owner, member = signed_in(web_app, clock), signed_in(web_app, clock, MEMBER_EMAIL)
    owner.add(authenticator)
    [passkey] = owner.passkeys()
    for public_id in (passkey.public_id, "x" * 65, "a b"):
        assert member.form_post(f"/account/passkeys/{public_id}/{action}", name="mine").status_code == 404
    assert member.client.get(f"/account/passkeys/{passkey.public_id}/remove").status_code == 404
    assert [p.name for p in owner.passkeys()] == ["Chrome on macOS"]


def test_remove_after_confirming(browser, authenticator):
    browser.add(authenticator)
    browser.add(SoftAuthenticator())
    first, _ = browser.passkeys()
    confirm = browser.client.get(f"/account/passkeys/{first.public_id}/remove")
    assert confirm.status_code == 200 and "Remove Chrome on macOS?" in confirm.text
    answer = browser.form_post(f"/account/passkeys/{first.public_id}/remove")
    assert (answer.status_code, answer.headers["Location"]) == (303, PAGE)
    assert [p.public_id for p in browser.passkeys()] != [first.public_id] and len(browser.passkeys()) == 1
    assert "Passkey removed." in browser.client.get(PAGE).text
    with browser.app.app_context():
        assert [e.details["passkey"] for e in events(EventTag.FACTOR_REMOVE)] == [first.public_id]


def test_removing_the_last_second_factor_discards_the_recovery_codes(browser, authenticator):
    browser.add(authenticator)
    [passkey] = browser.passkeys()
    browser.form_post(f"/account/passkeys/{passkey.public_id}/remove")
    assert "your recovery codes were discarded too" in browser.client.get(PAGE).text
    assert browser.passkeys() == []
    with browser.app.app_context():
        assert recovery.remaining(User.by_email(OWNER_EMAIL)) == 0


def test_removing_needs_a_recent_sign_in(browser, authenticator, clock):
    browser.add(authenticator)
    [passkey] = browser.passkeys()
    clock.advance(minutes=11)  # FRESH_AUTH_MINUTES is 10
    path = f"/account/passkeys/{passkey.public_id}/remove"
    for answer in (browser.client.get(path), browser.form_post(path)):
        assert answer.status_code in (302, 303)
        assert answer.headers["Location"].startswith("/account/reauthenticate?next=")
    assert len(browser.passkeys()) == 1
    assert f'href="{path}"' in browser.client.get(PAGE).text  # the button leads to the page, no modal
    assert 'data-opens="dialog-passkey-1"' not in browser.client.get(PAGE).text
