"""The owner's "Require two-step verification" switch and the people list on /account/security (DESIGN §9, issue 11
item 5): a plain form, CSRF on, owners only, recorded; who has which second factors, read in one query. On SQLite
and PostgreSQL."""

import json
import re

import pytest
import sqlalchemy as sa
from flask import Flask

from app.accounts import services, two_step_policy
from app.accounts.account_policy_views import NOT_REQUIRED, REQUIRED, SET_UP_YOURS
from app.accounts.models import ROLE_MEMBER, Account, User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.factors import recovery
from app.passkeys import services as passkeys
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, PASSWORD
from tests.factors.conftest import app_code, enrolled
from tests.helpers import count_statements
from tests.passkeys.conftest import ORIGIN
from tests.passkeys.soft_authenticator import SoftAuthenticator

CARD = "/account/security"
SWITCH = "/account/security/two-step"


def user(email: str) -> User:
    found = User.by_email(email)
    assert found is not None
    return found


def add_passkey(app: Flask, clock, email: str) -> None:
    with app.app_context():
        person = user(email)
        handle, options = passkeys.registration_options(person, clock.now())
        response = json.dumps(SoftAuthenticator().create(options, ORIGIN))
        passkeys.register(person, handle, response, "Chrome on macOS", clock.now())
        recovery.generate(person, clock.now())
        db.session.commit()


def signed_in(app: Flask, email: str = OWNER_EMAIL):
    client = app.test_client()
    assert Auth(client).login(email=email).status_code == 303
    return client


def signed_in_with_app_code(app: Flask, clock, email: str = OWNER_EMAIL):
    """A person with an authenticator app, signed in with both steps."""
    with app.app_context():
        enrolment = enrolled(user(email), clock.now())
    client = app.test_client()
    assert Auth(client).login(email=email).headers["Location"] == "/login/verify"
    page = client.get("/login/verify")
    done = client.post("/login/verify", data={"code": app_code(enrolment, clock.now()),
                                              "csrf_token": csrf_token_from(page.text)})  # fmt: skip
    assert done.status_code == 303
    return client


def press(client, value: str, token_page: str = CARD):
    token = csrf_token_from(client.get(token_page).text)
    return client.post(SWITCH, data={"required": value, "csrf_token": token})


def required(app: Flask) -> bool:
    with app.app_context():
        return db.session.scalar(sa.select(Account.two_step_required))


def switch_events(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        return AuditEvent.tagged(str(EventTag.TWO_STEP_POLICY_CHANGE))


def person_line(page: str, app: Flask, email: str) -> str:
    with app.app_context():
        person_id = user(email).id
    match = re.search(rf'<li class="person" id="factors-{person_id}">(.*?)</li>', page, re.S)
    assert match, f"{email} is not on the people list"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_the_card_shows_the_switch_off_and_warns_an_owner_without_a_second_step(web_app):
    page = signed_in(web_app).get(CARD).text
    assert 'role="switch" aria-checked="false">Require two-step verification' in page
    assert 'name="required" value="on"' in page
    assert "You have no second step yet: as soon as you turn this on, you" in page


def test_an_owner_without_a_second_step_who_turns_it_on_is_sent_to_set_one_up(web_app):
    client = signed_in(web_app)
    answer = press(client, "on")
    assert answer.status_code == 303 and answer.headers["Location"] == "/account/two-step"
    assert required(web_app)
    page = client.get("/account/two-step").text
    assert SET_UP_YOURS in page and "Your account requires two-step verification." in page
    assert client.get(CARD).headers["Location"] == "/account/two-step"  # held like everyone else, not locked out


def test_an_owner_with_a_second_step_switches_it_on_and_off_and_each_change_is_recorded(web_app, clock):
    client = signed_in_with_app_code(web_app, clock)
    assert "You have no second step yet" not in client.get(CARD).text
    on = press(client, "on")
    assert on.status_code == 303 and on.headers["Location"] == CARD
    page = client.get(CARD).text
    assert REQUIRED in page
    assert 'role="switch" aria-checked="true">Require two-step verification' in page
    assert 'name="required" value="off"' in page
    assert press(client, "on").status_code == 303  # already on: nothing changes, nothing is recorded
    off = press(client, "off")
    assert off.headers["Location"] == CARD and NOT_REQUIRED in client.get(CARD).text
    assert not required(web_app)
    with web_app.app_context():
        owner = user(OWNER_EMAIL)
        events = [(e.user_id, e.account_id, e.ip, e.details) for e in switch_events(web_app)]
        assert events == [
            (owner.id, owner.account_id, "127.0.0.1", {"old": {"two_step_required": False},
                                                        "new": {"two_step_required": True}}),
            (owner.id, owner.account_id, "127.0.0.1", {"old": {"two_step_required": True},
                                                        "new": {"two_step_required": False}}),
        ]  # fmt: skip
        assert all(e.session_id is not None for e in switch_events(web_app))


def test_members_cannot_switch_it(web_app):
    client = signed_in(web_app, MEMBER_EMAIL)
    answer = press(client, "on", token_page="/account/two-step")
    assert answer.status_code == 403
    assert not required(web_app) and switch_events(web_app) == []


def test_signed_out_the_switch_asks_to_sign_in(web_app):
    client = web_app.test_client()
    token = csrf_token_from(client.get("/login").text)
    answer = client.post(SWITCH, data={"required": "on", "csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert not required(web_app)


@pytest.mark.parametrize(
    ("data", "status"),
    [({"required": "on"}, 400), ({"required": "yes"}, 400), ({}, 400)],
    ids=["no-csrf-token", "unknown-value", "no-value"],
)
def test_a_bad_post_changes_nothing(web_app, data, status):
    client = signed_in(web_app)
    if data != {"required": "on"}:
        data = {**data, "csrf_token": csrf_token_from(client.get(CARD).text)}
    assert client.post(SWITCH, data=data).status_code == status
    assert not required(web_app) and switch_events(web_app) == []


def test_the_people_list_says_who_has_which_second_step(web_app, clock):
    add_passkey(web_app, clock, MEMBER_EMAIL)
    add_passkey(web_app, clock, MEMBER_EMAIL)
    with web_app.app_context():
        recovery.use(user(MEMBER_EMAIL), recovery.generate(user(MEMBER_EMAIL), clock.now())[0], clock.now())
        db.session.commit()
        account = db.session.get(Account, user(OWNER_EMAIL).account_id)
        services.create_user(account, "linus@example.test", "Linus T", ROLE_MEMBER, PASSWORD, clock.now())
        db.session.commit()
    client = signed_in_with_app_code(web_app, clock)
    page = client.get(CARD).text
    assert person_line(page, web_app, OWNER_EMAIL) == (
        f"Ada Lovelace (you) {OWNER_EMAIL} Authenticator app · 0 of 10 recovery codes left"
    )
    assert person_line(page, web_app, MEMBER_EMAIL) == (
        f"Grace Hopper {MEMBER_EMAIL} 2 passkeys · 9 of 10 recovery codes left"
    )
    assert person_line(page, web_app, "linus@example.test") == "Linus T linus@example.test No second step"
    assert "1 of 3 people has no second step yet." in page


def test_the_people_list_is_read_in_one_query_however_many_people(web_app, clock):
    def statements_for_card() -> tuple[int, int]:
        with web_app.app_context():
            account = db.session.get(Account, user(OWNER_EMAIL).account_id)
            with count_statements(web_app, "") as statements:
                card = two_step_policy.card(account)
            return statements["n"], len(card.people)

    assert statements_for_card() == (1, 2)
    add_passkey(web_app, clock, MEMBER_EMAIL)
    with web_app.app_context():
        account = db.session.get(Account, user(OWNER_EMAIL).account_id)
        for n in range(10):
            services.create_user(account, f"p{n}@example.test", f"Person {n}", ROLE_MEMBER, PASSWORD, clock.now())
        db.session.commit()
    assert statements_for_card() == (1, 12)
