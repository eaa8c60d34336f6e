"""The two-step verification page (/account/two-step; DESIGN §9, issue 11 items 1, 2 and 4) through the real forms,
CSRF on, on SQLite and PostgreSQL. Codes are computed with pyotp from the setup key as the page shows it."""

import html
import json
import re
from datetime import timedelta
from urllib.parse import unquote

import pyotp
import pytest
from flask import template_rendered
from sqlalchemy import select

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.extensions import db
from app.factors import recovery
from app.factors.models import RecoveryCode, TotpAuthenticator
from app.factors.views import WRONG_SETUP_CODE
from tests.conftest import Auth, csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.passkeys.conftest import ORIGIN, portal_in
from tests.passkeys.soft_authenticator import SoftAuthenticator

PAGE = "/account/two-step"
BEGIN = "/account/two-step/authenticator/new"
SETUP = "/account/two-step/authenticator/setup"
TURN_OFF = "/account/two-step/authenticator/remove"
NEW_CODES = "/account/two-step/recovery-codes/new"
STEP = timedelta(seconds=30)
SETUP_KEY = re.compile(r'<code class="setup-key" id="setup-key">([A-Z2-7 ]+)</code>')
SHOWN_CODE = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")
DOWNLOAD = re.compile(r'download="gatehouse-recovery-codes.txt"\s+href="data:text/plain;charset=utf-8,([^"]*)"')
CODES_LEFT = re.compile(r'id="recovery-count">\s*<strong>(\d+) of 10 recovery codes left.</strong>')


class TwoStep:
    """A signed-in browser on the page: what a user reads and presses."""

    def __init__(self, app, client, clock):
        self.app, self.client, self.clock = app, client, clock

    def token(self, path: str = PAGE) -> str:
        return csrf_token_from(self.client.get(path).text)

    def post(self, path: str, **data):
        return self.client.post(path, data={"csrf_token": self.token(), **data})

    def begin(self) -> str:
        """Press "Set up an authenticator app"; the setup key as shown, spaces removed."""
        started = self.post(BEGIN)
        assert started.status_code == 303 and started.headers["Location"] == SETUP
        return setup_key(self.client.get(SETUP).text)

    def send_code(self, code: str):
        return self.post(SETUP, code=code)

    def code_at(self, key: str, offset_steps: int = 0) -> str:
        return pyotp.TOTP(key).at(self.clock.now() + offset_steps * STEP)

    def enrol(self) -> tuple[str, list[str]]:
        key = self.begin()
        shown = self.send_code(self.code_at(key))
        assert shown.status_code == 200
        return key, SHOWN_CODE.findall(shown.text)

    def codes_left(self) -> int:
        match = CODES_LEFT.search(self.client.get(PAGE).text)
        assert match, "no recovery-code count on the page"
        return int(match.group(1))

    def reauthenticate(self, location: str, key: str):
        """The password and, the account having an authenticator app, its current code (DESIGN §9)."""
        next_url = location.split("next=", 1)[1]
        token = csrf_token_from(self.client.get(location).text)
        form = {"csrf_token": token, "password": PASSWORD, "code": self.code_at(key), "next": unquote(next_url)}
        done = self.client.post("/account/reauthenticate", data=form)
        assert done.status_code == 303
        return done.headers["Location"]

    def owner(self) -> User:
        user = User.by_email(OWNER_EMAIL)
        assert user is not None
        return user


def setup_key(page_html: str) -> str:
    match = SETUP_KEY.search(page_html)
    assert match, "no setup key on the page"
    return match.group(1).replace(" ", "")


def field_error(page_html: str) -> str:
    match = re.search(r'<p class="field__error" id="code-error">([^<]+)</p>', page_html)
    assert match, "no error next to the code field"
    return html.unescape(match.group(1))


@pytest.fixture
def two_step(app, client, owner, clock) -> TwoStep:
    Auth(client).login()
    return TwoStep(app, client, clock)


def test_signed_out_the_page_asks_to_sign_in(client, owner):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account/two-step"


def test_the_page_says_the_app_is_off_and_offers_to_set_it_up(two_step):
    page = two_step.client.get(PAGE).text
    assert '<span class="tag tag--off">Off</span>' in page
    assert f'action="{BEGIN}"' in page and "Set up an authenticator app</button>" in page
    assert "recovery codes left" not in page  # no second factor, no recovery codes
    assert f'<a href="{PAGE}" aria-current="page">Two-step</a>' in page


def test_set_up_shows_a_qr_code_and_the_key_as_text_and_a_reload_shows_the_same(two_step):
    key = two_step.begin()
    page = two_step.client.get(SETUP).text
    assert re.fullmatch(r"[A-Z2-7]{32}", key)
    assert '<svg role="img" aria-label="QR code to scan with your authenticator app"' in page
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page
    assert setup_key(two_step.client.get(SETUP).text) == key
    with two_step.app.app_context():
        assert not TotpAuthenticator.for_user(two_step.owner().id).is_confirmed


def test_a_set_up_left_for_more_than_thirty_minutes_starts_again(two_step):
    key = two_step.begin()
    for minutes in (20, 11):  # the portal session kept alive meanwhile (its idle timeout is 30 minutes)
        two_step.clock.advance(minutes=minutes)
        assert two_step.client.get(PAGE).status_code == 200
    sent = two_step.send_code(two_step.code_at(key))
    assert sent.status_code == 303 and sent.headers["Location"] == PAGE
    page = two_step.client.get(PAGE).text
    assert "This set-up expired after 30 minutes" in page
    assert two_step.client.get(SETUP).headers["Location"] == PAGE  # nothing left to show
    assert two_step.begin() != key  # a new key


def test_a_wrong_code_keeps_the_user_on_the_step_with_the_same_key(two_step):
    key = two_step.begin()
    wrong = next(c for c in ("000000", "111111", "222222") if c not in {two_step.code_at(key, n) for n in (-1, 0, 1)})
    response = two_step.send_code(wrong)
    assert response.status_code == 400
    assert field_error(response.text) == WRONG_SETUP_CODE  # not the sign-in step's hint at recovery codes
    assert setup_key(response.text) == key  # the same QR code and key: the app already holds them
    assert 'aria-invalid="true"' in response.text and "data-error-summary" in response.text
    with two_step.app.app_context():
        assert not TotpAuthenticator.for_user(two_step.owner().id).is_confirmed
        [failure] = AuditEvent.tagged("account:factor:failure")  # committed although nothing turned on
        assert failure.details["reason"] == "wrong"
    assert '<span class="tag tag--off">Off</span>' in two_step.client.get(PAGE).text


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the 6-digit code your authenticator app shows."),
        ("1" * 17, "That code is not right. It has 6 digits."),
    ],
    ids=["empty", "too-long"],
)
def test_a_code_that_is_not_a_code_is_refused_by_the_form(two_step, typed, message):
    key = two_step.begin()
    response = two_step.send_code(typed)
    assert response.status_code == 400
    assert field_error(response.text) == message
    assert setup_key(response.text) == key


def test_a_right_code_turns_it_on_and_shows_ten_recovery_codes_once(two_step):
    key = two_step.begin()
    shown = two_step.send_code(two_step.code_at(key, -1))  # ±1 step: the user typed a code that just changed
    assert shown.status_code == 200
    assert "The authenticator app is on." in shown.text
    codes = SHOWN_CODE.findall(shown.text)
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code) for code in codes)
    download = unquote(html.unescape(DOWNLOAD.search(shown.text).group(1)))
    assert download.splitlines()[0] == f"Gatehouse recovery codes for {OWNER_EMAIL}"
    assert download.splitlines()[-10:] == codes
    assert 'data-copy="recovery-codes" hidden>Copy</button>' in shown.text  # shown by JavaScript only
    page = two_step.client.get(PAGE).text
    assert '<span class="tag">On</span>' in page
    assert two_step.codes_left() == 10
    assert not any(code in page for code in codes)  # shown once
    with two_step.app.app_context():
        assert recovery.use(two_step.owner(), codes[3], two_step.clock.now()) == 9  # the codes shown are the ones kept
        db.session.commit()
    assert two_step.codes_left() == 9


def test_wrong_codes_are_limited_with_the_wait_next_to_the_field_and_a_429(two_step):
    key = two_step.begin()
    for _ in range(5):  # SECOND_FACTOR_RATE_LIMIT: 5 per minute
        assert two_step.send_code("000000").status_code == 400
    limited = two_step.send_code(two_step.code_at(key))  # even the right code waits
    assert limited.status_code == 429
    wait = int(limited.headers["Retry-After"])
    assert 0 < wait <= 60
    assert field_error(limited.text) == f"Too many wrong codes. Try again in {wait} seconds."
    assert setup_key(limited.text) == key


def test_setting_up_again_while_on_is_refused(two_step):
    two_step.enrol()
    refused = two_step.post(BEGIN)
    assert refused.status_code == 303 and refused.headers["Location"] == PAGE
    assert "An authenticator app is already set up." in two_step.client.get(PAGE).text
    assert two_step.client.get(SETUP).headers["Location"] == PAGE  # no set-up in progress


def test_the_code_sent_again_after_turning_on_shows_no_new_codes(two_step):
    key, codes = two_step.enrol()
    again = two_step.send_code(two_step.code_at(key))  # a double submit, or the browser resending the form
    assert again.status_code == 303 and again.headers["Location"] == PAGE
    assert SHOWN_CODE.findall(two_step.client.get(PAGE).text) == []
    with two_step.app.app_context():
        assert recovery.use(two_step.owner(), codes[0], two_step.clock.now()) == 9


def test_the_set_up_step_without_a_set_up_goes_back_to_the_page(two_step):
    response = two_step.client.get(SETUP)
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert "No set-up is in progress." in two_step.client.get(PAGE).text


@pytest.mark.parametrize("path", [BEGIN, SETUP, TURN_OFF, NEW_CODES])
def test_every_change_needs_the_csrf_token(two_step, path):
    two_step.enrol()
    assert two_step.client.post(path, data={"code": "123456"}).status_code == 400
    assert two_step.codes_left() == 10 and '<span class="tag">On</span>' in two_step.client.get(PAGE).text


def test_fresh_the_page_opens_modals_and_stale_it_leads_to_the_confirmation_pages(two_step):
    two_step.enrol()
    page = two_step.client.get(PAGE).text
    assert 'data-opens="dialog-turn-off"' in page and 'data-opens="dialog-recovery-codes"' in page
    assert f'action="{TURN_OFF}"' in page and f'action="{NEW_CODES}"' in page
    two_step.clock.advance(minutes=11)  # FRESH_AUTH_MINUTES is 10
    page = two_step.client.get(PAGE).text
    assert "data-opens" not in page and "<dialog" not in page
    assert f'href="{TURN_OFF}"' in page and f'href="{NEW_CODES}"' in page


@pytest.mark.parametrize("path", [TURN_OFF, NEW_CODES])
def test_removing_and_new_codes_ask_for_the_password_after_a_while(two_step, path):
    two_step.enrol()
    two_step.clock.advance(minutes=11)
    for stale in (two_step.client.get(path), two_step.post(path)):
        assert stale.status_code == 303
        assert stale.headers["Location"] == f"/account/reauthenticate?next={path}"
    assert two_step.codes_left() == 10 and '<span class="tag">On</span>' in two_step.client.get(PAGE).text


def test_new_recovery_codes_after_re_authentication_void_the_old_set(two_step):
    key, old_codes = two_step.enrol()
    with two_step.app.app_context():
        recovery.use(two_step.owner(), old_codes[0], two_step.clock.now())
        db.session.commit()
    two_step.clock.advance(minutes=11)
    back_to = two_step.reauthenticate(two_step.post(NEW_CODES).headers["Location"], key)
    assert back_to == NEW_CODES
    confirm = two_step.client.get(back_to)
    assert confirm.status_code == 200 and "Generate new recovery codes?" in confirm.text
    shown = two_step.client.post(NEW_CODES, data={"csrf_token": csrf_token_from(confirm.text)})
    assert shown.status_code == 200 and "New recovery codes made. The old ones no longer work." in shown.text
    new_codes = SHOWN_CODE.findall(shown.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert two_step.codes_left() == 10
    with two_step.app.app_context():
        for old in old_codes[1:3]:
            with pytest.raises(recovery.WrongCode):
                recovery.use(two_step.owner(), old, two_step.clock.now())
        assert AuditEvent.tagged("account:recovery_codes:regenerate")[-1].session_id is not None


def test_turning_off_the_last_factor_discards_the_recovery_codes(two_step):
    key, _ = two_step.enrol()
    two_step.clock.advance(minutes=11)
    back_to = two_step.reauthenticate(two_step.client.get(TURN_OFF).headers["Location"], key)
    confirm = two_step.client.get(back_to)
    assert "Turn off the authenticator app?" in confirm.text
    done = two_step.client.post(TURN_OFF, data={"csrf_token": csrf_token_from(confirm.text)})
    assert done.status_code == 303 and done.headers["Location"] == PAGE
    page = two_step.client.get(PAGE).text
    assert "The authenticator app is off. Your recovery codes were discarded with it." in page
    assert '<span class="tag tag--off">Off</span>' in page and "recovery codes left" not in page
    with two_step.app.app_context():
        user = two_step.owner()
        assert TotpAuthenticator.for_user(user.id) is None
        assert db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all() == []
        assert AuditEvent.tagged("account:factor:remove")[-1].details["factor"] == "totp"


def test_new_codes_need_a_second_factor(two_step):
    refused = two_step.post(NEW_CODES)
    assert refused.status_code == 303 and refused.headers["Location"] == PAGE
    assert "Turn on a second factor first" in two_step.client.get(PAGE).text
    with two_step.app.app_context():
        assert recovery.remaining(two_step.owner()) == 0


def test_turning_off_an_app_that_is_not_on_says_so(two_step):
    refused = two_step.post(TURN_OFF)
    assert refused.status_code == 303
    assert "No authenticator app is set up." in two_step.client.get(PAGE).text


def test_a_low_count_warns(two_step):
    _, codes = two_step.enrol()
    with two_step.app.app_context():
        for code in codes[:7]:
            recovery.use(two_step.owner(), code, two_step.clock.now())
        db.session.commit()
    page = two_step.client.get(PAGE).text
    assert 'class="recovery-count notice notice--warning"' in page and "Generate new ones before you run out." in page


@pytest.fixture
def with_passkey(make_app, clock):
    """A signed-in owner who then adds a passkey (through its ceremony, on the portal's own origin)."""
    app = make_app(ISSUER=ORIGIN)
    with app.app_context():
        portal_in(clock)  # the account and its people
    client = app.test_client()
    Auth(client).login()
    # Through the real endpoints: the passkey just made counts on this session (DESIGN §9), as in a browser.
    headers = {"X-CSRFToken": csrf_token_from(client.get(PAGE).text), "Content-Type": "application/json"}
    options = client.post("/account/passkeys/register/options", data="{}", headers=headers)
    answer = json.dumps(SoftAuthenticator().create(options.text, ORIGIN))
    assert client.post("/account/passkeys/register", data=answer, headers=headers).status_code == 200
    return TwoStep(app, client, clock)


def test_with_a_passkey_the_first_codes_are_kept_and_outlive_the_app(with_passkey):
    made = with_passkey.post(NEW_CODES)  # a passkey is a second factor: recovery codes can be made
    passkey_codes = SHOWN_CODE.findall(made.text)
    assert len(passkey_codes) == 10
    key = with_passkey.begin()
    on = with_passkey.send_code(with_passkey.code_at(key))
    assert on.status_code == 200 and SHOWN_CODE.findall(on.text) == []  # no new set: the old one still works
    assert "Your recovery codes still work" in on.text and "10 of 10 recovery codes left" in on.text
    assert with_passkey.post(TURN_OFF).headers["Location"] == PAGE
    assert "The authenticator app is off." in with_passkey.client.get(PAGE).text
    assert with_passkey.codes_left() == 10  # the passkey is still a second factor
    with with_passkey.app.app_context():
        assert recovery.use(with_passkey.owner(), passkey_codes[0], with_passkey.clock.now()) == 9


def test_the_page_gives_the_passkeys_section_the_users_passkeys(with_passkey):
    rendered = []

    def record(_app, template, context, **_extra):
        rendered.append((template.name, context))

    with template_rendered.connected_to(record, with_passkey.app):
        with_passkey.client.get(PAGE)
    [context] = [context for name, context in rendered if name == "factors/index.html"]
    assert len(context["passkeys"]) == 1 and context["passkeys"][0].name
