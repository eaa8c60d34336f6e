"""Forgotten password end to end (DESIGN §10, issue 12 item 2): the request, the mail through a real SMTP server, the
single-use 30-minute link bound to the password, the second step, and everything a reset signs out."""

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.accounts.models import User
from app.accounts.reset_models import PasswordReset
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.factors import recovery
from app.mail import delivery
from app.oauth.models import OAuthGrant, RefreshToken
from app.sessions.models import UserSession
from tests.conftest import CSRF_PATTERN, Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, PASSWORD
from tests.factors.conftest import app_code, enrolled
from tests.oauth.conftest import Flow, make_client  # noqa: F401 (a fixture)

NEW_PASSWORD = "a brand new passphrase for ada"
SAME_ANSWER = "If <strong>{}</strong> belongs to a Gatehouse account"
LINK = re.compile(r"https?://[^\s\"<>]+")


@pytest.fixture
def app(mail_app):
    return mail_app


def ask(client, email=OWNER_EMAIL, ip="192.0.2.1"):
    page = client.get("/forgot-password", environ_base={"REMOTE_ADDR": ip})
    assert page.status_code == 200
    answer = client.post("/forgot-password", data={"email": email, "csrf_token": csrf_token_from(page.text)},
                         environ_base={"REMOTE_ADDR": ip})  # fmt: skip
    assert answer.status_code == 200 and SAME_ANSWER.format(email) in answer.text
    return answer


def delivered(app, smtp, clock) -> list:
    with app.app_context():
        delivery.deliver_due(clock.now())
    return smtp.recorder.received


def the_link(message) -> str:
    """The one link of the mail, the same in both parts (the footer names the issuer, not a link)."""
    issuer = message.get_body(("plain",)).get_content()
    text_links = [u for u in LINK.findall(issuer) if "/reset-password/" in u]
    html_links = re.findall(r'href="([^"]+)"', message.get_body(("html",)).get_content())
    assert len(text_links) == 1 and html_links == text_links, (text_links, html_links)
    return text_links[0]


def path_of(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def set_password(client, path, password=NEW_PASSWORD, code=None):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    data = {"new_password": password, "confirm_password": password, "csrf_token": csrf_token_from(page.text)}
    if code is not None:
        data["code"] = code
    return client.post(path, data=data)


def signs_in(app, password) -> bool:
    answer = Auth(app.test_client()).login(password=password)
    return answer.status_code == 303


def test_the_mail_arrives_with_one_link_that_works_once(app, client, owner, smtp, clock):
    assert 'href="/forgot-password"' in client.get("/login").text
    ask(client)
    [message] = delivered(app, smtp, clock)
    assert message["To"] == OWNER_EMAIL and message["Subject"] == "Choose a new Gatehouse password"
    path = path_of(the_link(message))
    with app.app_context():  # stored hashed: the link's token is nowhere in the table
        token = path.rsplit("/", 1)[1]
        assert db.session.scalar(select(func.count()).where(PasswordReset.token_hash == token)) == 0
        assert db.session.scalar(select(func.count()).select_from(PasswordReset)) == 1
    done = set_password(client, path)
    assert done.status_code == 200 and "Password changed, sign in" in done.text
    assert client.get("/").status_code == 302  # not signed in
    assert signs_in(app, NEW_PASSWORD) and not signs_in(app, PASSWORD)
    again = client.get(path)
    assert again.status_code == 404 and "Send a new link" in again.text
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.tag == EventTag.PASSWORD_RESET)).all()
        assert event.user_id == owner.owner_id


def test_a_spent_link_is_refused_even_if_the_password_were_the_same(app, client, owner, smtp, clock):
    """Single use does not rest on the password binding alone: the link is spent in one conditional statement, so
    of two concurrent resets only one passes."""
    ask(client)
    path = path_of(the_link(delivered(app, smtp, clock)[0]))
    with app.app_context():
        reset = db.session.scalars(select(PasswordReset)).one()
        assert reset.use(clock.now()) and not reset.use(clock.now())
        db.session.commit()
    assert client.get(path).status_code == 404


def test_the_link_is_on_the_issuers_site_whatever_the_host_header(app, client, owner, smtp, clock):
    forged = {"Host": "evil.test"}
    page = client.get("/forgot-password", headers=forged)
    answer = client.post("/forgot-password", data={"email": OWNER_EMAIL, "csrf_token": csrf_token_from(page.text)},
                         headers=forged)  # fmt: skip
    assert answer.status_code == 200
    link = the_link(delivered(app, smtp, clock)[0])
    issuer = urlsplit(app.config["ISSUER"])
    assert link.startswith(f"{issuer.scheme}://{issuer.netloc}/reset-password/ghp_")


def test_the_link_expires_after_30_minutes(app, client, owner, smtp, clock):
    ask(client)
    path = path_of(the_link(delivered(app, smtp, clock)[0]))
    clock.advance(minutes=29, seconds=59)
    assert client.get(path).status_code == 200
    clock.advance(seconds=1)
    page = client.get(path)
    assert page.status_code == 404 and "Send a new link" in page.text
    assert not signs_in(app, NEW_PASSWORD) and signs_in(app, PASSWORD)


def test_the_link_dies_when_the_password_changes(app, client, owner, smtp, clock):
    ask(client)
    path = path_of(the_link(delivered(app, smtp, clock)[0]))
    assert Auth(client).login().status_code == 303
    page = client.get("/account")
    changed = client.post("/account", data={"current_password": PASSWORD, "new_password": "another long passphrase",
                                            "confirm_password": "another long passphrase",
                                            "csrf_token": csrf_token_from(page.text)})  # fmt: skip
    assert changed.status_code == 303
    assert app.test_client().get(path).status_code == 404


def test_unknown_and_disabled_addresses_get_the_same_answer_and_no_mail(app, client, owner, smtp, clock):
    with app.app_context():
        db.session.scalar(select(User).where(User.email == MEMBER_EMAIL)).disabled_at = clock.now()
        db.session.commit()
    known = ask(client, OWNER_EMAIL)
    unknown = ask(client, "nobody@example.test")
    disabled = ask(client, MEMBER_EMAIL)

    def page(answer, email):
        # The CSRF token is signed with the current second: two requests may straddle one.
        return CSRF_PATTERN.sub("CSRF", answer.text.replace(email, "E"))

    assert page(known, OWNER_EMAIL) == page(unknown, "nobody@example.test") == page(disabled, MEMBER_EMAIL)
    assert [m["To"] for m in delivered(app, smtp, clock)] == [OWNER_EMAIL]


def test_at_most_three_mails_per_address_an_hour(app, client, owner, smtp, clock):
    for n in range(4):
        ask(client, ip=f"192.0.2.{n + 1}")  # four addresses: only the per-e-mail limit can hold the fourth
    assert len(delivered(app, smtp, clock)) == 3
    ask(client, MEMBER_EMAIL, ip="192.0.2.9")  # another address is not held back by it
    assert [m["To"] for m in delivered(app, smtp, clock)][3:] == [MEMBER_EMAIL]


def test_at_most_ten_requests_per_client_address_a_minute(app, client, owner, smtp, clock):
    for _ in range(10):
        ask(client, "nobody@example.test", ip="198.51.100.7")
    ask(client, OWNER_EMAIL, ip="198.51.100.7")  # the eleventh: the same answer, no mail
    assert delivered(app, smtp, clock) == []
    ask(client, OWNER_EMAIL, ip="198.51.100.8")
    assert len(delivered(app, smtp, clock)) == 1


@pytest.fixture
def enrolment(app, owner, clock):
    with app.app_context():
        user = db.session.get(User, owner.owner_id)
        app_enrolment = enrolled(user, clock.now())
        codes = recovery.generate(user, clock.now())
        db.session.commit()
    return app_enrolment, codes


def test_an_account_with_a_second_factor_needs_it_too(app, client, owner, smtp, clock, enrolment):
    app_enrolment, _codes = enrolment
    ask(client)
    path = path_of(the_link(delivered(app, smtp, clock)[0]))
    assert "authenticator app, or a recovery code" in client.get(path).text
    missing = set_password(client, path)
    assert missing.status_code == 400 and not signs_in(app, NEW_PASSWORD)
    wrong = set_password(client, path, code="000000" if app_code(app_enrolment, clock.now()) != "000000" else "111111")
    assert wrong.status_code == 400 and not signs_in(app, NEW_PASSWORD)
    done = set_password(client, path, code=app_code(app_enrolment, clock.now()))
    assert "Password changed, sign in" in done.text
    assert Auth(app.test_client()).login(password=NEW_PASSWORD).headers["Location"] == "/login/verify"


def test_a_recovery_code_works_as_the_second_step(app, client, owner, smtp, clock, enrolment):
    _app_enrolment, codes = enrolment
    ask(client)
    path = path_of(the_link(delivered(app, smtp, clock)[0]))
    assert "Password changed, sign in" in set_password(client, path, code=codes[0]).text
    assert Auth(app.test_client()).login(password=NEW_PASSWORD).headers["Location"] == "/login/verify"


def test_a_weak_password_is_refused_and_the_link_still_works(app, client, owner, smtp, clock):
    ask(client)
    path = path_of(the_link(delivered(app, smtp, clock)[0]))
    assert set_password(client, path, password="short").status_code == 400
    assert "Password changed, sign in" in set_password(client, path).text


def test_every_session_grant_and_refresh_token_of_the_user_ends(app, client, owner, smtp, clock, make_client):  # noqa: F811
    flow = Flow(app, make_client(first_party=True))
    flow.sign_in()
    issued = flow.tokens()
    other_device = app.test_client()
    Auth(other_device).login()
    Auth(app.test_client()).login(email=MEMBER_EMAIL)
    ask(client)
    [reset] = [m for m in delivered(app, smtp, clock) if m["Subject"] == "Choose a new Gatehouse password"]
    done = set_password(client, path_of(the_link(reset)))  # the other device's sign-in was alerted too
    assert "Password changed, sign in" in done.text
    assert other_device.get("/").status_code == 302 and flow.browser.get("/").status_code == 302
    assert flow.refresh(issued["refresh_token"]).status_code == 400
    with app.app_context():
        live = select(UserSession.user_id).where(UserSession.revoked_at.is_(None))
        assert [u for u in db.session.scalars(live)] == [owner.member_id]  # the member stays signed in
        assert db.session.scalars(select(OAuthGrant).where(OAuthGrant.revoked_at.is_(None))).all() == []
        assert db.session.scalars(select(RefreshToken).where(RefreshToken.revoked_at.is_(None))).all() == []


@pytest.mark.parametrize("token", ["nonsense", "ghp_" + "A" * 43, "ghp_" + "é" * 10, "x" * 5000, "ghp_%00"])
def test_a_bad_link_offers_to_start_again(client, owner, token):
    page = client.get(f"/reset-password/{token}")
    assert page.status_code == 404 and "Send a new link" in page.text
    form = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
            "csrf_token": csrf_token_from(client.get("/forgot-password").text)}  # fmt: skip
    assert client.post(f"/reset-password/{token}", data=form).status_code == 404
