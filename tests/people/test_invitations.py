"""Invitations end to end (issue 12 item 6, DESIGN §10): the owner's form, the mail through a real SMTP server, the
single-use 7-day link, resend and cancel, and the new person signed in; on SQLite and PostgreSQL."""

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.accounts import services as accounts
from app.accounts.models import Account, User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.people import invitations
from app.people.models import Invitation
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, PASSWORD
from tests.people.conftest import (
    NEW_EMAIL,
    NEW_NAME,
    NEW_PASSWORD,
    PEOPLE,
    Browser,
    accept,
    delivered,
    invitation_rows,
    path_of,
    the_link,
)

NO_LONGER_WORKS = "This invitation link no longer works"
ASK_AN_OWNER = "Ask an owner of the account to send you a new invitation."


def invited(owner_browser, app, smtp, clock, email=NEW_EMAIL, role="member") -> str:
    """Invite through the page; the path of the link the mail brought."""
    answer = owner_browser.invite(email, role)
    assert answer.status_code == 303 and answer.headers["Location"] == PEOPLE, answer.text[:2000]
    message = delivered(app, smtp, clock)[-1]
    assert message["To"] == email
    return path_of(the_link(message))


def tags(app, tag: EventTag) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == tag).order_by(AuditEvent.id)))
        db.session.expunge_all()
        return events


def test_the_invited_person_chooses_a_name_and_password_and_is_signed_in(app, owner, owner_browser, smtp, clock):
    answer = owner_browser.invite(NEW_EMAIL.upper() + " ")  # normalized like every address
    assert answer.status_code == 303
    page = owner_browser.page().text
    assert "Invitation sent to lin@example.test" in page and "Pending invitations" in page and "Queued" in page
    [message] = delivered(app, smtp, clock)
    assert message["To"] == NEW_EMAIL and message["Subject"] == "Ada Lovelace invited you to Example on Gatehouse"
    text = message.get_body(("plain",)).get_content()
    assert "as a member" in text and "Mon 12 Jan 2026, 09:00 UTC (7 days)" in text
    link = the_link(message)
    issuer = urlsplit(app.config["ISSUER"])
    assert link.startswith(f"{issuer.scheme}://{issuer.netloc}/invitation/ghi_")
    token = link.rsplit("/", 1)[1]
    with app.app_context():  # stored as a digest only
        assert db.session.scalar(select(func.count()).where(Invitation.token_hash == token)) == 0
    assert "Delivered" in owner_browser.page().text

    newcomer = app.test_client()
    form = newcomer.get(path_of(link))
    assert form.status_code == 200
    assert "Join Example as a member" in form.text and 'value="lin@example.test" readonly' in form.text
    assert "At least 15 characters" in form.text  # the password rule said before anyone gets it wrong
    joined = accept(newcomer, path_of(link))
    assert joined.status_code == 303 and joined.headers["Location"] == "/"
    home = newcomer.get("/")
    assert home.status_code == 200 and f"Welcome, {NEW_NAME}" in home.text and "Member of Example" in home.text
    with app.app_context():
        user = User.by_email(NEW_EMAIL)
        assert (user.name, user.role, user.account.name) == (NEW_NAME, "member", "Example")
        [row] = db.session.scalars(select(Invitation)).all()
        assert row.accepted_at == clock.now() and row.user_id == user.id
        new_id = user.id
    [sent] = tags(app, EventTag.INVITATION_SEND)
    assert (sent.user_id, sent.account_id, sent.details["role"]) == (owner.owner_id, owner.account_id, "member")
    [accepted] = tags(app, EventTag.INVITATION_ACCEPT)
    assert (accepted.user_id, accepted.account_id) == (new_id, owner.account_id)
    assert [e.user_id for e in tags(app, EventTag.SIGN_IN_SUCCESS)][-1] == new_id
    people = owner_browser.page().text
    assert NEW_NAME in people and "Pending invitations" not in people
    assert Auth(app.test_client()).login(email=NEW_EMAIL, password=NEW_PASSWORD).status_code == 303

    again = app.test_client().get(path_of(link))  # used: dead
    assert again.status_code == 404 and NO_LONGER_WORKS in again.text and ASK_AN_OWNER in again.text
    assert 'href="/login"' in again.text


def test_an_owner_invitation_makes_an_owner(app, owner, owner_browser, smtp, clock):
    path = invited(owner_browser, app, smtp, clock, role="owner")
    newcomer = app.test_client()
    assert "Join Example as an owner" in newcomer.get(path).text
    assert accept(newcomer, path).status_code == 303
    assert newcomer.get(PEOPLE).status_code == 200  # owners only


def test_the_link_works_for_7_days(app, owner, owner_browser, smtp, clock):
    path = invited(owner_browser, app, smtp, clock)
    clock.advance(days=7, seconds=-1)
    assert app.test_client().get(path).status_code == 200
    clock.advance(seconds=1)
    late = app.test_client()
    page = late.get(path)
    assert page.status_code == 404 and NO_LONGER_WORKS in page.text
    token = csrf_token_from(late.get("/login").text)
    posted = late.post(path, data={"name": NEW_NAME, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                   "csrf_token": token})  # fmt: skip
    assert posted.status_code == 404
    with app.app_context():
        assert User.by_email(NEW_EMAIL) is None
    assert "Expired" in Browser(app).page().text  # the owner sees it, and can resend


def test_a_resend_sends_a_new_link_and_the_old_one_dies(app, owner, owner_browser, smtp, clock):
    old = invited(owner_browser, app, smtp, clock)
    clock.advance(days=8)  # expired: resending revives it for 7 days from now
    owner_browser = Browser(app)
    [row] = invitation_rows(app)
    answer = owner_browser.post(f"{PEOPLE}/invitations/{row.id}/resend")
    assert answer.status_code == 303
    assert "previous link no longer works" in owner_browser.page().text
    new = path_of(the_link(delivered(app, smtp, clock)[-1]))
    assert new != old and len(delivered(app, smtp, clock)) == 2
    assert app.test_client().get(old).status_code == 404
    [row] = invitation_rows(app)
    assert row.expires_at == clock.now() + invitations.LINK_LIFETIME and row.mail_id is not None
    assert [e.user_id for e in tags(app, EventTag.INVITATION_RESEND)] == [owner.owner_id]
    assert accept(app.test_client(), new).status_code == 303


def test_a_cancelled_invitation_link_dies(app, owner, owner_browser, smtp, clock):
    path = invited(owner_browser, app, smtp, clock)
    [row] = invitation_rows(app)
    newcomer = app.test_client()
    assert newcomer.get(path).status_code == 200
    assert owner_browser.post(f"{PEOPLE}/invitations/{row.id}/cancel").status_code == 303
    page = owner_browser.page().text
    assert "Cancelled the invitation to lin@example.test" in page and "Pending invitations" not in page
    assert newcomer.get(path).status_code == 404
    [row] = invitation_rows(app)
    assert row.cancelled_at == clock.now()
    assert [e.user_id for e in tags(app, EventTag.INVITATION_CANCEL)] == [owner.owner_id]
    again = owner_browser.post(f"{PEOPLE}/invitations/{row.id}/resend")  # a stale form: said, nothing sent
    assert again.status_code == 303 and "was cancelled" in owner_browser.page().text
    assert len(delivered(app, smtp, clock)) == 1


@pytest.mark.parametrize(
    ("email", "message"),
    [
        (OWNER_EMAIL, "ada@example.test is already in Example."),
        (MEMBER_EMAIL.upper(), "grace@example.test is already in Example."),
        ("someone@other.test", "already signs in to Gatehouse with another account"),
        ("not an address", "Enter one e-mail address"),
        ("two@example.test, three@example.test", "Enter one e-mail address"),
    ],
)
def test_an_address_that_cannot_be_invited_is_refused_and_kept(app, owner, owner_browser, smtp, clock, email, message):
    with app.app_context():
        other = accounts.create_account("Other", clock.now())
        accounts.create_user(other, "someone@other.test", "Someone", "owner", PASSWORD, clock.now())
        db.session.commit()
    answer = owner_browser.invite(email)
    assert answer.status_code == 400 and message in answer.text
    assert f'value="{email}"' in answer.text  # the input is kept
    assert invitation_rows(app) == [] and delivered(app, smtp, clock) == []


def test_a_second_invitation_to_a_pending_address_offers_resend(app, owner, owner_browser, smtp, clock):
    invited(owner_browser, app, smtp, clock)
    answer = owner_browser.invite(NEW_EMAIL, "owner")
    assert answer.status_code == 400
    assert "An invitation to lin@example.test is already pending: use Resend next to it below." in answer.text
    assert len(invitation_rows(app)) == 1 and len(delivered(app, smtp, clock)) == 1


@pytest.mark.parametrize("role", ["admin", "", "OWNER"])
def test_a_forged_role_is_refused(app, owner, owner_browser, smtp, clock, role):
    answer = owner_browser.invite(NEW_EMAIL, role)
    assert answer.status_code == 400 and invitation_rows(app) == []


def test_at_most_20_invitation_mails_per_account_an_hour(app, owner, owner_browser, smtp, clock):
    for n in range(19):
        assert owner_browser.invite(f"person{n}@example.test").status_code == 303
    [first, *_] = invitation_rows(app)
    assert owner_browser.post(f"{PEOPLE}/invitations/{first.id}/resend").status_code == 303  # the 20th mail
    refused = owner_browser.invite("one-too-many@example.test")
    assert refused.status_code == 429 and "Too many invitations" in refused.text and refused.headers["Retry-After"]
    assert owner_browser.post(f"{PEOPLE}/invitations/{first.id}/resend").status_code == 303
    assert "Too many invitations" in owner_browser.page().text
    assert len(invitation_rows(app)) == 19 and len(delivered(app, smtp, clock)) == 20


def test_the_link_is_on_the_issuers_site_whatever_the_host_header(app, owner, owner_browser, smtp, clock):
    browser = owner_browser.client
    signed_in = app.config["PORTAL_COOKIE_NAME"]
    browser.set_cookie(signed_in, browser.get_cookie(signed_in).value, domain="evil.test")  # sent to that host too
    assert owner_browser.invite(NEW_EMAIL, Host="evil.test").status_code == 303
    link = the_link(delivered(app, smtp, clock)[0])
    issuer = urlsplit(app.config["ISSUER"])
    assert link.startswith(f"{issuer.scheme}://{issuer.netloc}/invitation/ghi_")


def test_a_refused_password_or_name_keeps_the_link_working(app, owner, owner_browser, smtp, clock):
    path = invited(owner_browser, app, smtp, clock)
    newcomer = app.test_client()
    weak = accept(newcomer, path, password="short")
    assert weak.status_code == 400 and "Use at least 15 characters" in weak.text
    personal = accept(newcomer, path, password="lin@example.testlin@example.test")
    assert personal.status_code == 400 and "mostly your e-mail" in personal.text
    differ = accept(newcomer, path, confirm="something else entirely")
    assert differ.status_code == 400 and "The two entries differ." in differ.text
    blank = accept(newcomer, path, name="   ")
    assert blank.status_code == 400 and NEW_NAME not in blank.text
    with app.app_context():
        assert User.by_email(NEW_EMAIL) is None
    [row] = invitation_rows(app)
    assert row.accepted_at is None
    assert accept(newcomer, path).status_code == 303


def test_an_address_taken_meanwhile_gets_a_clear_page(app, owner, owner_browser, smtp, clock):
    path = invited(owner_browser, app, smtp, clock)
    newcomer = app.test_client()
    page = newcomer.get(path)
    with app.app_context():
        account = db.session.get(Account, owner.account_id)
        accounts.create_user(account, NEW_EMAIL, "Made by the CLI", "member", PASSWORD, clock.now())
        db.session.commit()
    data = {"name": NEW_NAME, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
            "csrf_token": csrf_token_from(page.text)}  # fmt: skip
    taken = newcomer.post(path, data=data)
    assert taken.status_code == 409 and "This address already has a sign-in" in taken.text
    assert 'href="/login"' in taken.text
    assert newcomer.get(path).status_code == 409
    with app.app_context():
        assert User.by_email(NEW_EMAIL).name == "Made by the CLI"
    [row] = invitation_rows(app)
    assert row.accepted_at is None


def test_an_account_that_requires_two_step_sends_the_new_person_to_set_it_up(app, owner, owner_browser, smtp, clock):
    path = invited(owner_browser, app, smtp, clock)
    with app.app_context():
        db.session.get(Account, owner.account_id).two_step_required = True
        db.session.commit()
    newcomer = app.test_client()
    assert accept(newcomer, path).status_code == 303
    held = newcomer.get("/")
    assert held.status_code == 303 and held.headers["Location"] == "/account/two-step"


def test_the_link_works_in_a_browser_held_to_set_up_two_step_verification(app, owner, owner_browser, smtp, clock):
    """The link is its own authority, whoever this browser has signed in: even someone held at set-up (everything
    else sends them there) sees the invitation, and accepting replaces their sign-in."""
    path = invited(owner_browser, app, smtp, clock)
    with app.app_context():
        db.session.get(Account, owner.account_id).two_step_required = True
        db.session.commit()
    held = Browser(app, email=MEMBER_EMAIL).client
    assert held.get("/").headers["Location"] == "/account/two-step"
    page = held.get(path)
    assert page.status_code == 200 and "Join Example as a member" in page.text
    assert accept(held, path).status_code == 303
    with app.app_context():
        assert User.by_email(NEW_EMAIL).name == NEW_NAME


def test_accepting_in_a_signed_in_browser_replaces_that_sign_in(app, owner, owner_browser, smtp, clock):
    path = invited(owner_browser, app, smtp, clock)
    shared = Browser(app, email=MEMBER_EMAIL).client
    assert "You are signed in here as grace@example.test" in shared.get(path).text
    assert accept(shared, path).status_code == 303
    assert f"Welcome, {NEW_NAME}" in shared.get("/").text
    with app.app_context():
        member = db.session.get(User, owner.member_id)
        ended = select(func.count()).where(AuditEvent.tag == EventTag.SIGN_OUT, AuditEvent.user_id == member.id)
        assert db.session.scalar(ended) == 1  # their session in that browser ended (replaced), as at /login


MALFORMED = ["nonsense", "ghi_" + "A" * 43, "ghp_" + "A" * 43, "ghi_" + "é" * 10, "ghi_" + "x" * 5000, "ghi_%00",
             "ghi_a%0Ab"]  # fmt: skip


@pytest.mark.parametrize("token", MALFORMED)
def test_a_malformed_or_foreign_link_offers_to_start_again(client, owner, token):
    page = client.get(f"/invitation/{token}")
    assert page.status_code == 404 and NO_LONGER_WORKS in page.text and ASK_AN_OWNER in page.text
    form = {"name": NEW_NAME, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
            "csrf_token": csrf_token_from(client.get("/login").text)}  # fmt: skip
    assert client.post(f"/invitation/{token}", data=form).status_code == 404


def test_a_reset_link_is_not_an_invitation(app, owner, owner_browser, smtp, clock):
    """A password-reset token (ghp_) is refused here by its prefix even if its digest were an invitation's."""
    path = invited(owner_browser, app, smtp, clock)
    token = path.rsplit("/", 1)[1]
    assert app.test_client().get("/invitation/ghp_" + token[4:]).status_code == 404
