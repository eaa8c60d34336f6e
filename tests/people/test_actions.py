"""What owners do to people at /account/people (issue 12 item 6): roles, with never less than one owner who can sign
in whatever the form says; signing a person out everywhere, apps included; disabling, enabling and removing with the
command line's services and effects. Through the real forms, CSRF on, on SQLite and PostgreSQL."""

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from app.accounts import services as accounts
from app.accounts.errors import AccountError
from app.accounts.models import Account, User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.people import services as people
from tests.client_api.test_internal_endpoints import verify
from tests.conftest import Auth
from tests.factories import MEMBER_EMAIL, PASSWORD
from tests.oauth.conftest import Flow, make_client  # noqa: F401 (a fixture)
from tests.people.conftest import PEOPLE, Browser

DISABLED = "This sign-in has been disabled. Ask an owner of your account."
LAST_OWNER = "You are the only owner of Example who can sign in. Make someone else an owner first."


def role_of(app, user_id: int) -> str | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        return user.role if user else None


def events(app, tag: EventTag) -> list[tuple[int | None, dict]]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.tag == tag).order_by(AuditEvent.id))
        return [(event.user_id, event.details) for event in rows]


def lifecycle(app) -> list[tuple[str, dict, str | None]]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.tag.in_(LIFECYCLE_TAGS)).order_by(AuditEvent.id)
        return [(event.tag, event.details, event.ip) for event in db.session.scalars(query)]


def notice(browser: Browser) -> str:
    return browser.page().text


def set_role(browser: Browser, person_id: int, role: str):
    return browser.post(f"{PEOPLE}/{person_id}/role", role=role)


def test_a_member_made_owner_can_manage_people_at_their_next_request(app, owner, owner_browser):
    grace = Browser(app, email=MEMBER_EMAIL)
    assert grace.page().status_code == 403
    assert set_role(owner_browser, owner.member_id, "owner").status_code == 303
    assert "Grace Hopper is now an owner." in notice(owner_browser)
    assert grace.page().status_code == 200  # the same session: the role is read on every request
    assert set_role(owner_browser, owner.member_id, "owner").status_code == 303
    assert "Grace Hopper already was an owner." in notice(owner_browser)
    assert set_role(owner_browser, owner.member_id, "member").status_code == 303
    assert grace.page().status_code == 403
    changes = events(app, EventTag.USER_ROLE_CHANGE)
    assert [(user_id, details["role"]) for user_id, details in changes] == [
        (owner.member_id, "owner"),
        (owner.member_id, "member"),
    ]
    assert all(details["by"] == owner.owner_id for _, details in changes)


@pytest.mark.parametrize("role", ["admin", "", "Owner", "owner\x00"])
def test_a_forged_role_is_refused(app, owner, owner_browser, role):
    answer = set_role(owner_browser, owner.member_id, role)
    assert answer.status_code == 303 and "Choose a role: member or owner." in notice(owner_browser)
    assert role_of(app, owner.member_id) == "member"


def test_the_only_owner_cannot_demote_themselves(app, owner, owner_browser):
    assert set_role(owner_browser, owner.owner_id, "member").status_code == 303
    assert LAST_OWNER in notice(owner_browser)
    assert role_of(app, owner.owner_id) == "owner" and events(app, EventTag.USER_ROLE_CHANGE) == []


def test_a_disabled_owner_does_not_count(app, owner, owner_browser, clock):
    with app.app_context():
        account = db.session.get(Account, owner.account_id)
        zed = accounts.create_user(account, "zed@example.test", "Zed", "owner", PASSWORD, clock.now())
        db.session.flush()
        zed.disabled_at = clock.now()
        db.session.commit()
        zed_id = zed.id
    set_role(owner_browser, owner.owner_id, "member")
    assert LAST_OWNER in notice(owner_browser) and role_of(app, owner.owner_id) == "owner"
    assert owner_browser.post(f"{PEOPLE}/{zed_id}/enable").status_code == 303
    assert "Zed can sign in again." in notice(owner_browser)
    answer = set_role(owner_browser, owner.owner_id, "member")  # now Zed can run the account
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    assert role_of(app, owner.owner_id) == "member" and owner_browser.page().status_code == 403


@pytest.mark.parametrize("action", ["disable", "remove", "sign-out"])
def test_an_owner_cannot_act_on_themselves_here(app, owner, owner_browser, action):
    """A forged post (the page shows no such buttons for yourself)."""
    assert f'{PEOPLE}/{owner.owner_id}/{action}"' not in owner_browser.page().text
    assert owner_browser.post(f"{PEOPLE}/{owner.owner_id}/{action}").status_code == 303
    assert "yourself" in notice(owner_browser)
    assert owner_browser.client.get("/").status_code == 200  # still signed in
    with app.app_context():
        assert db.session.get(User, owner.owner_id).disabled_at is None


def test_the_services_refuse_the_last_owner_whoever_asks(app, owner, clock):
    """The rule is the service's, not the page's: an actor that is not even an owner changes nothing."""
    with app.app_context():
        ada, grace = db.session.get(User, owner.owner_id), db.session.get(User, owner.member_id)
        for attempt in (lambda: people.change_role(grace, ada, "member", clock.now(), None),
                        lambda: people.disable(grace, ada, clock.now(), None),
                        lambda: people.remove(grace, ada, clock.now(), None)):  # fmt: skip
            with pytest.raises(AccountError, match="the only owner of Example who can sign in"):
                attempt()
            db.session.rollback()
    assert role_of(app, owner.owner_id) == "owner"


# --- Sign out everywhere, disable, enable, remove ---


def member_with_an_app(app, make_client) -> tuple[Flow, dict]:  # noqa: F811
    rp = make_client(first_party=True, backchannel_logout_uri="https://app.test/bcl")
    flow = Flow(app, rp).sign_in(email=MEMBER_EMAIL)
    return flow, flow.tokens(device_id="member-laptop")


def rows(app, sql: str, **params) -> list:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(sa.text(sql), params)]


def test_sign_out_everywhere_ends_every_session_and_app_of_the_person(app, owner, owner_browser, make_client):  # noqa: F811
    flow, tokens = member_with_an_app(app, make_client)
    laptop = Browser(app, email=MEMBER_EMAIL)
    page = owner_browser.page().text
    assert f'data-opens="dialog-sign_out-{owner.member_id}"' in page  # fresh: the modal asks
    answer = owner_browser.post(f"{PEOPLE}/{owner.member_id}/sign-out")
    assert answer.status_code == 303
    assert "Signed Grace Hopper out of 2 devices and the apps they approved." in notice(owner_browser)
    for browser in (flow.browser, laptop.client):
        gone = browser.get("/account/devices")
        assert gone.status_code == 302 and "reason=signed_out_by_owner" in gone.headers["Location"]
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert verify(app, flow.rp, tokens["grant_token"]).json["active"] is False
    assert rows(app, "SELECT count(*) FROM oauth_grants WHERE revoked_at IS NULL") == [(0,)]
    assert rows(app, "SELECT count(*) FROM oauth_refresh_tokens WHERE revoked_at IS NULL") == [(0,)]
    assert events(app, EventTag.USER_SIGN_OUT_EVERYWHERE) == [(owner.member_id, {"count": 2, "by": owner.owner_id})]
    assert owner_browser.client.get("/").status_code == 200  # the owner stays
    assert Auth(app.test_client()).login(email=MEMBER_EMAIL).status_code == 303  # and they can sign in again


def run_cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def act(app, via: str, action: str, person_id: int, email: str, owner_browser: Browser):
    """The page's button (confirmed) or the command line's command: the same service either way."""
    if via == "page":
        assert owner_browser.post(f"{PEOPLE}/{person_id}/{action}").status_code == 303
    else:
        run_cli(app, "users", {"remove": "delete"}.get(action, action), "--email", email,
                *(["--yes"] if action == "remove" else []))  # fmt: skip


LIFECYCLE_TAGS = (EventTag.USER_DISABLE, EventTag.USER_ENABLE, EventTag.USER_DELETE)
LIFECYCLE = "('admin:user:disable', 'admin:user:enable', 'admin:user:delete')"


@pytest.mark.parametrize("via", ["page", "cli"])
def test_disable_then_enable_as_the_command_line_does(app, owner, owner_browser, make_client, via):  # noqa: F811
    flow, tokens = member_with_an_app(app, make_client)
    act(app, via, "disable", owner.member_id, MEMBER_EMAIL, owner_browser)
    assert flow.browser.get("/").headers["Location"].startswith("/login")
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert verify(app, flow.rp, tokens["grant_token"]).json == {"active": False, "reason": "revoked"}
    assert rows(app, "SELECT count(*) FROM oauth_logout_deliveries WHERE uri = 'https://app.test/bcl'") == [(1,)]
    refused = Auth(app.test_client()).login(email=MEMBER_EMAIL)
    assert refused.status_code == 400 and DISABLED in refused.text
    if via == "page":
        assert "Grace Hopper is disabled" in notice(owner_browser)
    act(app, via, "enable", owner.member_id, MEMBER_EMAIL, owner_browser)
    assert Auth(app.test_client()).login(email=MEMBER_EMAIL).status_code == 303
    steps = rows(app, f"SELECT tag, user_id FROM audit_events WHERE tag IN {LIFECYCLE} ORDER BY id")
    assert steps == [("admin:user:disable", owner.member_id), ("admin:user:enable", owner.member_id)]
    # From the page, the records name the owner who did it and from where; the command line names nobody.
    actors = [(details.get("by"), ip) for _, details, ip in lifecycle(app)]
    assert actors == ([(owner.owner_id, "127.0.0.1")] * 2 if via == "page" else [(None, None)] * 2)


@pytest.mark.parametrize("via", ["page", "cli"])
def test_remove_as_the_command_line_does(app, owner, owner_browser, make_client, via):  # noqa: F811
    flow, tokens = member_with_an_app(app, make_client)
    act(app, via, "remove", owner.member_id, MEMBER_EMAIL, owner_browser)
    assert rows(app, "SELECT count(*) FROM users WHERE email = :e", e=MEMBER_EMAIL) == [(0,)]
    assert rows(app, "SELECT count(*) FROM oauth_grants") == [(0,)]
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert verify(app, flow.rp, tokens["grant_token"]).json["active"] is False
    assert rows(app, "SELECT count(*) FROM oauth_logout_deliveries") == [(1,)]
    kept = rows(app, f"SELECT tag, user_id FROM audit_events WHERE tag IN {LIFECYCLE} ORDER BY id")
    assert kept == [("admin:user:disable", None), ("admin:user:delete", None)]
    actors = [(details.get("by"), ip) for _, details, ip in lifecycle(app)]
    assert actors == ([(owner.owner_id, "127.0.0.1")] * 2 if via == "page" else [(None, None)] * 2)
    if via == "page":
        page = notice(owner_browser)
        assert "Removed Grace Hopper from the account." in page and "grace@example.test" not in page


def test_an_owner_can_be_disabled_by_another_owner(app, owner, owner_browser):
    assert set_role(owner_browser, owner.member_id, "owner").status_code == 303
    assert owner_browser.post(f"{PEOPLE}/{owner.member_id}/disable").status_code == 303
    assert "Grace Hopper is disabled" in notice(owner_browser)
    assert DISABLED in Auth(app.test_client()).login(email=MEMBER_EMAIL).text


@pytest.mark.parametrize(("action", "title", "button"), [
    ("sign-out", "Sign Grace Hopper out everywhere?", "Sign out everywhere"),
    ("disable", "Disable Grace Hopper?", "Disable"),
    ("remove", "Remove Grace Hopper from Example?", "Remove"),
])  # fmt: skip
def test_without_javascript_a_confirmation_page_asks_first(app, owner, owner_browser, action, title, button):
    path = f"{PEOPLE}/{owner.member_id}/{action}"
    page = owner_browser.page().text
    assert f'href="{path}"' in page  # the link the modal's trigger is, without JavaScript
    confirm = owner_browser.client.get(path)
    assert confirm.status_code == 200 and title in confirm.text
    assert f'action="{path}"' in confirm.text and f">{button}</button>" in confirm.text
    assert 'href="/account/people">Cancel' in confirm.text
    assert role_of(app, owner.member_id) == "member"
    with app.app_context():
        assert db.session.get(User, owner.member_id).disabled_at is None
