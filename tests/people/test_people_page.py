"""/account/people as an owner sees it (issue 12 item 6): each person's role, devices, last activity, second steps and
refused mail, the pending invitations with their mail's delivery, in a fixed number of queries; owners only; every
action a POST with CSRF on one of the owner's own account's people. SQLite and PostgreSQL."""

import html
import re

import pytest
from sqlalchemy import select

from app.accounts import services as accounts
from app.accounts.models import Account, User
from app.extensions import db
from app.factors import recovery
from app.people.models import Invitation
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, PASSWORD
from tests.factors.conftest import enrolled
from tests.helpers import count_statements
from tests.people.conftest import NEW_EMAIL, PEOPLE, Browser, delivered, invitation_rows

REFUSAL = "550 5.1.1 <{}>: Recipient address rejected: User unknown"


def person_row(page: str, person_id: int) -> str:
    """The text of one person's row, tags stripped and spaces squeezed."""
    match = re.search(rf'<li class="member" id="person-{person_id}">(.*?)</li>', page, re.S)
    assert match, f"no row for person {person_id}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def invitation_row(page: str, invitation_id: int) -> str:
    match = re.search(rf'<li class="member" id="invitation-{invitation_id}">(.*?)</li>', page, re.S)
    assert match, f"no row for invitation {invitation_id}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def ask_for_a_reset(app, email: str) -> None:
    """Any mail to the address will do: a forgotten-password mail, asked for as anyone would."""
    client = app.test_client()
    token = csrf_token_from(client.get("/forgot-password").text)
    assert client.post("/forgot-password", data={"email": email, "csrf_token": token}).status_code == 200


def test_each_person_with_devices_last_activity_and_second_steps(app, owner, owner_browser, clock):
    with app.app_context():
        grace = db.session.get(User, owner.member_id)
        enrolled(grace, clock.now())
        recovery.generate(grace, clock.now())
        db.session.commit()
    Auth(app.test_client()).login()  # Ada's second device
    grace_browser = app.test_client()
    assert Auth(grace_browser).login(email=MEMBER_EMAIL).status_code == 303  # then the second step: no session
    clock.advance(minutes=5)
    owner_browser.page()  # Ada active now
    page = owner_browser.page().text
    ada = person_row(page, owner.owner_id)
    assert "Ada Lovelace (you)" in ada and "ada@example.test" in ada and "Owner" in ada
    assert "Devices 2 signed in" in ada and "Last active just now" in ada and "Second step None" in ada
    grace = person_row(page, owner.member_id)
    assert "(you)" not in grace and "Member" in grace and "Devices 0 signed in" in grace
    assert "Last active Never signed in" in grace
    assert "Second step Authenticator app · 10 of 10 recovery codes left" in grace
    assert "People in Example (2)" in page and "Pending invitations" not in page


def test_ended_sessions_do_not_count_but_their_activity_does(app, owner, owner_browser, clock):
    grace = Browser(app, email=MEMBER_EMAIL)
    clock.advance(minutes=3)
    grace.page()  # a member's request: activity recorded, then the 403
    grace.client.post("/logout", data={"csrf_token": grace.token()})
    clock.advance(minutes=2)
    row = person_row(owner_browser.page().text, owner.member_id)
    assert "Devices 0 signed in" in row and "Last active 2 min ago" in row


def test_a_disabled_person_is_shown_as_such_with_enable(app, owner, owner_browser, clock):
    with app.app_context():
        accounts.disable_user(db.session.get(User, owner.member_id), clock.now())
        db.session.commit()
    page = owner_browser.page().text
    assert "Disabled" in person_row(page, owner.member_id)
    assert f'action="/account/people/{owner.member_id}/enable"' in page
    assert f'action="/account/people/{owner.member_id}/disable"' not in page


def test_the_page_reads_the_same_number_of_queries_however_many_people(app, owner, owner_browser, clock):
    def selects() -> int:
        owner_browser.page()  # anything a first view caches (the session, the user) is cached for both counts
        with count_statements(app, "SELECT") as counter:
            assert owner_browser.page().status_code == 200
        return counter["n"]

    few = selects()
    with app.app_context():
        account = db.session.get(Account, owner.account_id)
        for n in range(10):
            accounts.create_user(account, f"p{n}@example.test", f"Person {n}", "member", PASSWORD, clock.now())
        db.session.commit()
    for n in range(5):
        assert owner_browser.invite(f"invited{n}@example.test").status_code == 303
    many = selects()
    assert many == few, (few, many)


def test_a_refused_invitation_mail_is_shown_with_the_servers_answer(app, owner, owner_browser, smtp, clock):
    smtp.recorder.refuse[NEW_EMAIL] = REFUSAL.format(NEW_EMAIL)
    assert owner_browser.invite(NEW_EMAIL).status_code == 303
    [row] = invitation_rows(app)
    assert "Mail Queued" in invitation_row(owner_browser.page().text, row.id)
    assert delivered(app, smtp, clock) == []
    shown = invitation_row(owner_browser.page().text, row.id)
    assert f"Not delivered: the receiving server refused it (SMTP {REFUSAL.format(NEW_EMAIL)})" in shown
    del smtp.recorder.refuse[NEW_EMAIL]  # the owner fixed the address's mailbox and resends
    assert owner_browser.post(f"{PEOPLE}/invitations/{row.id}/resend").status_code == 303
    assert len(delivered(app, smtp, clock)) == 1
    assert "Mail Delivered just now" in invitation_row(owner_browser.page().text, row.id)


def test_a_temporary_failure_says_it_is_retrying(app, owner, owner_browser, smtp, clock):
    smtp.recorder.refuse[NEW_EMAIL] = "450 4.2.0 Mailbox busy"
    assert owner_browser.invite(NEW_EMAIL).status_code == 303
    delivered(app, smtp, clock)
    [row] = invitation_rows(app)
    shown = invitation_row(owner_browser.page().text, row.id)
    assert "Not delivered yet, retrying (SMTP 450 4.2.0 Mailbox busy)" in shown


def test_a_members_refused_mailbox_is_shown_until_a_mail_gets_through(app, owner, owner_browser, smtp, clock):
    smtp.recorder.refuse[MEMBER_EMAIL] = REFUSAL.format(MEMBER_EMAIL)
    ask_for_a_reset(app, MEMBER_EMAIL)
    delivered(app, smtp, clock)
    row = person_row(owner_browser.page().text, owner.member_id)
    assert f"Mail to this address was refused: SMTP {REFUSAL.format(MEMBER_EMAIL)}" in row
    assert "refused" not in person_row(owner_browser.page().text, owner.owner_id)
    del smtp.recorder.refuse[MEMBER_EMAIL]
    clock.advance(minutes=1)
    ask_for_a_reset(app, MEMBER_EMAIL)
    delivered(app, smtp, clock)
    assert "refused" not in person_row(owner_browser.page().text, owner.member_id)


def test_home_and_security_pages_lead_owners_here(app, owner, owner_browser):
    assert 'href="/account/people"' in owner_browser.client.get("/").text
    assert 'href="/account/people"' in owner_browser.client.get("/account/security").text
    member = Browser(app, email=MEMBER_EMAIL)
    assert 'href="/account/people"' not in member.client.get("/").text


# --- Who may do what ---


def routes(person_id: int, invitation_id: int) -> list[tuple[str, str]]:
    person = f"{PEOPLE}/{person_id}"
    invitation = f"{PEOPLE}/invitations/{invitation_id}"
    return [("GET", PEOPLE), ("POST", f"{PEOPLE}/invitations"), ("POST", f"{invitation}/resend"),
            ("POST", f"{invitation}/cancel"), ("POST", f"{person}/role"), ("GET", f"{person}/sign-out"),
            ("POST", f"{person}/sign-out"), ("GET", f"{person}/disable"), ("POST", f"{person}/disable"),
            ("POST", f"{person}/enable"), ("GET", f"{person}/remove"), ("POST", f"{person}/remove")]  # fmt: skip


@pytest.fixture
def pending(app, owner, owner_browser) -> Invitation:
    assert owner_browser.invite(NEW_EMAIL).status_code == 303
    return invitation_rows(app)[0]


def snapshot(app) -> list:
    with app.app_context():
        users = db.session.execute(select(User.id, User.role, User.disabled_at)).all()
        invitations = db.session.execute(select(Invitation.id, Invitation.token_hash, Invitation.cancelled_at)).all()
        return sorted(users) + sorted(invitations)


def test_a_member_gets_403_on_every_people_route(app, owner, pending):
    member = Browser(app, email=MEMBER_EMAIL)
    before = snapshot(app)
    for method, path in routes(owner.owner_id, pending.id):
        answer = member.client.open(path, method=method, data={"csrf_token": member.token(), "role": "member",
                                                                "email": "x@example.test"})  # fmt: skip
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert snapshot(app) == before
    assert ">People</a>" not in member.client.get("/").text  # the main menu offers it to owners only


def test_owners_reach_the_page_from_the_main_menu(app, owner, owner_browser):
    menu = owner_browser.client.get("/").text
    assert '<a href="/account/people" >People</a>' in menu
    assert '<a href="/account/people" aria-current="page">People</a>' in owner_browser.page().text


def test_the_owner_of_another_account_gets_404_on_each_person_and_invitation(app, owner, pending, clock):
    with app.app_context():
        other = accounts.create_account("Other", clock.now())
        accounts.create_user(other, "olga@other.test", "Olga", "owner", PASSWORD, clock.now())
        db.session.commit()
    stranger = Browser(app, email="olga@other.test")
    assert NEW_EMAIL not in stranger.page().text and "Grace" not in stranger.page().text
    before = snapshot(app)
    for method, path in routes(owner.member_id, pending.id)[2:]:
        answer = stranger.client.open(path, method=method, data={"csrf_token": stranger.token(), "role": "owner"})
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert snapshot(app) == before


@pytest.mark.parametrize("number", [999_999, 2**31, 10**20], ids=["unknown", "past-int4", "huge"])
def test_unknown_ids_are_404(app, owner, owner_browser, number):
    """DESIGN §8: an id past PostgreSQL's integer range is unknown too, not a driver error."""
    for method, path in routes(number, number)[2:]:
        answer = owner_browser.client.open(path, method=method, data={"csrf_token": owner_browser.token()})
        assert answer.status_code == 404, (method, path)


def test_a_post_without_its_csrf_token_is_refused(app, owner, owner_browser, pending):
    before = snapshot(app)
    for method, path in routes(owner.member_id, pending.id):
        if method == "POST":
            answer = owner_browser.client.post(path, data={"role": "owner", "email": "y@example.test"})
            assert answer.status_code == 400 and "The form expired" in answer.text, path
    assert snapshot(app) == before


def test_changing_people_asks_for_the_password_again_after_a_while(app, owner, owner_browser, pending, clock):
    clock.advance(minutes=app.config["FRESH_AUTH_MINUTES"] + 1)
    before = snapshot(app)
    for method, path in routes(owner.member_id, pending.id)[4:]:
        answer = owner_browser.client.open(path, method=method, data={"csrf_token": owner_browser.token(),
                                                                      "role": "owner"})  # fmt: skip
        target = path if method == "GET" else PEOPLE
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["Location"] == f"/account/reauthenticate?next={target}", path
    assert snapshot(app) == before
    page = owner_browser.page().text  # the buttons lead to the confirmation pages, which ask first
    assert "asks for your password first" in page and "data-opens=" not in page
