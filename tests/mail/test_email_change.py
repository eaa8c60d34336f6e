"""E-mail change end to end (DESIGN §10, issue 12 item 3): asked on /account, the link mailed to the new address
through a real SMTP server, confirmed from any browser, the old address told; single use, 24 hours, only the newest
link, dead once the address changes; no answer tells whether an address is taken. On SQLite and PostgreSQL."""

import re
import threading
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, text

from app.accounts import services
from app.accounts.email_change_models import EmailChange
from app.accounts.models import ROLE_MEMBER, Account, User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.mail import delivery
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, PASSWORD

NEW_EMAIL = "ada@new.example.test"
LINK = re.compile(r"https?://[^\s\"<>]+")
CONFIRM_PATH = "/account/email/confirm/"
SENT = "We sent a link to {}. Open it to confirm the change."
INVALID = "This link no longer works"
DONE = "E-mail address changed"


@pytest.fixture
def app(mail_app):
    return mail_app


@pytest.fixture
def ada(app, client, owner):
    """The owner, just signed in (a fresh sign-in: the change may be asked)."""
    assert Auth(client).login().status_code == 303
    return client


def ask(client, new_email=NEW_EMAIL, **kwargs):
    page = client.get("/account", **kwargs)
    assert page.status_code == 200
    return client.post("/account/email", data={"email": new_email, "csrf_token": csrf_token_from(page.text)}, **kwargs)


def ask_ok(client, new_email=NEW_EMAIL):
    answer = ask(client, new_email)
    assert answer.status_code == 303 and answer.headers["Location"] == "/account", answer.status_code
    return answer


def delivered(app, smtp, clock) -> list:
    with app.app_context():
        delivery.deliver_due(clock.now())
    return smtp.recorder.received


def links_in(app, message) -> tuple[list[str], list[str]]:
    """The links of the text part (the footer names the issuer, not a link) and of the HTML part."""
    plain = [u for u in LINK.findall(message.get_body(("plain",)).get_content()) if u != app.config["ISSUER"]]
    html = re.findall(r'href="([^"]+)"', message.get_body(("html",)).get_content())
    return plain, html


def the_link(app, message) -> str:
    plain, html = links_in(app, message)
    assert len(plain) == 1 and html == plain, (plain, html)
    return plain[0]


def origin(app) -> str:
    issuer = urlsplit(app.config["ISSUER"])
    return f"{issuer.scheme}://{issuer.netloc}"


def path_of(link: str) -> str:
    return urlsplit(link).path


def mailed_link(app, smtp, clock, to=NEW_EMAIL) -> str:
    [message] = [m for m in delivered(app, smtp, clock) if m["To"] == to and "Confirm" in m["Subject"]][-1:]
    return path_of(the_link(app, message))


def confirm(client, path):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return client.post(path, data={"csrf_token": csrf_token_from(page.text)})


def email_of(app, user_id) -> str:
    with app.app_context():
        return db.session.get(User, user_id).email


def signs_in(app, email) -> bool:
    return Auth(app.test_client()).login(email=email).status_code == 303


def events(app, tag) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == tag)))


def test_the_new_address_confirms_once_from_any_browser_and_the_old_one_is_told(app, ada, owner, smtp, clock):
    answer = ask_ok(ada)
    page = ada.get(answer.headers["Location"])
    assert SENT.format(NEW_EMAIL) in page.text
    assert f"Waiting for you to confirm <strong>{NEW_EMAIL}</strong>" in " ".join(page.text.split())
    [message] = delivered(app, smtp, clock)
    assert message["To"] == NEW_EMAIL and message["Subject"] == "Confirm your new Gatehouse e-mail address"
    link = the_link(app, message)
    assert link.startswith(f"{origin(app)}{CONFIRM_PATH}ghe_")
    path = path_of(link)
    with app.app_context():  # stored hashed: the link's token is nowhere in the table
        token = path.rsplit("/", 1)[1]
        assert db.session.scalar(select(func.count()).where(EmailChange.token_hash == token)) == 0

    elsewhere = app.test_client()  # another browser, signed in nowhere: the link is its own authority
    asking = elsewhere.get(path)
    assert asking.status_code == 200
    assert "Change your e-mail from <strong>a***@example.test</strong> to <strong>ada@new.example.test</strong>?" in (
        asking.text
    )
    assert elsewhere.head(path).status_code == 200
    assert email_of(app, owner.owner_id) == OWNER_EMAIL  # asking changes nothing
    done = confirm(elsewhere, path)
    assert done.status_code == 200 and DONE in done.text and 'href="/login"' in done.text
    assert email_of(app, owner.owner_id) == NEW_EMAIL

    [notice] = delivered(app, smtp, clock)[1:]
    assert notice["To"] == OWNER_EMAIL and notice["Subject"] == "Your Gatehouse e-mail address was changed"
    body = notice.get_body(("plain",)).get_content()
    assert f"changed to {NEW_EMAIL} on Mon 05 Jan 2026, 09:00 UTC" in " ".join(body.split())
    assert "owner" in body and links_in(app, notice) == ([], [])  # no link, no secret

    again = elsewhere.get(path)
    assert again.status_code == 404 and INVALID in again.text and "Start again" in again.text
    assert elsewhere.post(path, data={"csrf_token": csrf_token_from(asking.text)}).status_code == 404
    assert ada.get("/").status_code == 200  # the sessions go on
    assert signs_in(app, NEW_EMAIL) and not signs_in(app, OWNER_EMAIL)

    [asked] = events(app, EventTag.EMAIL_CHANGE_REQUEST)
    [changed] = events(app, EventTag.EMAIL_CHANGE)
    assert asked.user_id == changed.user_id == owner.owner_id and asked.session_id is not None
    assert asked.details == changed.details == {}  # no address in the log
    assert "Changed the e-mail address" in ada.get("/account/activity").text


def test_signed_in_the_done_page_leads_home(app, ada, smtp, clock):
    ask_ok(ada)
    done = confirm(ada, mailed_link(app, smtp, clock))
    assert DONE in done.text and 'href="/">Home</a>' in done.text


def test_the_link_is_on_the_issuers_site_whatever_the_host_header(app, client, owner, smtp, clock):
    assert Auth(client).login(Host="evil.test").status_code == 303
    answer = ask(client, headers={"Host": "evil.test"})
    assert answer.status_code == 303
    assert the_link(app, delivered(app, smtp, clock)[0]).startswith(f"{origin(app)}{CONFIRM_PATH}ghe_")


def test_the_link_works_for_24_hours(app, ada, owner, smtp, clock):
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    clock.advance(hours=23, minutes=59, seconds=59)
    assert app.test_client().get(path).status_code == 200
    clock.advance(seconds=1)
    page = app.test_client().get(path)
    assert page.status_code == 404 and INVALID in page.text
    assert email_of(app, owner.owner_id) == OWNER_EMAIL


def test_only_the_newest_link_works(app, ada, owner, smtp, clock):
    ask_ok(ada, "first@new.example.test")
    ask_ok(ada, "second@new.example.test")
    first = mailed_link(app, smtp, clock, to="first@new.example.test")
    second = mailed_link(app, smtp, clock, to="second@new.example.test")
    assert app.test_client().get(first).status_code == 404
    assert "second@new.example.test" in ada.get("/account").text and "first@new" not in ada.get("/account").text
    assert DONE in confirm(app.test_client(), second).text
    assert email_of(app, owner.owner_id) == "second@new.example.test"


def test_the_link_dies_when_the_address_changes_otherwise(app, ada, owner, smtp, clock):
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    with app.app_context():  # an operator's change, say
        db.session.get(User, owner.owner_id).email = "ada@elsewhere.example.test"
        db.session.commit()
    assert app.test_client().get(path).status_code == 404
    assert "Waiting for you" not in ada.get("/account").text
    assert email_of(app, owner.owner_id) == "ada@elsewhere.example.test"


def test_a_disabled_users_link_dies(app, client, owner, smtp, clock):
    Auth(client).login(email=MEMBER_EMAIL)
    ask_ok(client, "grace@new.example.test")
    path = mailed_link(app, smtp, clock, to="grace@new.example.test")
    with app.app_context():
        services.disable_user(db.session.get(User, owner.member_id), clock.now())
        db.session.commit()
    assert app.test_client().get(path).status_code == 404
    assert email_of(app, owner.member_id) == MEMBER_EMAIL


def same_page(html: str, address: str) -> str:
    """The page with the address it names and its CSRF token (signed with the time) blanked."""
    return html.replace(address, "ADDRESS").replace(csrf_token_from(html), "CSRF")


def test_a_taken_address_gets_the_same_answer_and_its_holder_a_notice_without_a_link(app, ada, owner, smtp, clock):
    ask_ok(ada, "free@new.example.test")
    free_page = ada.get("/account").text
    older = mailed_link(app, smtp, clock, to="free@new.example.test")
    ask_ok(ada, MEMBER_EMAIL)
    taken_page = ada.get("/account").text
    assert same_page(taken_page, MEMBER_EMAIL) == same_page(free_page, "free@new.example.test")
    assert app.test_client().get(older).status_code == 404  # the older link ended, as for a free address

    [notice] = delivered(app, smtp, clock)[1:]
    assert notice["To"] == MEMBER_EMAIL and notice["Subject"] == "Someone tried to use your address on Gatehouse"
    assert "nothing changed" in notice.get_body(("plain",)).get_content()
    assert links_in(app, notice) == ([], [])
    assert email_of(app, owner.owner_id) == OWNER_EMAIL and email_of(app, owner.member_id) == MEMBER_EMAIL
    assert len(events(app, EventTag.EMAIL_CHANGE_REQUEST)) == 2  # recorded alike
    assert "Asked to change the e-mail address" in ada.get("/account/activity").text


def test_an_address_taken_after_the_link_was_sent_is_a_clear_page_and_nothing_changes(app, ada, owner, smtp, clock):
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    with app.app_context():
        services.create_user(db.session.get(Account, owner.account_id), NEW_EMAIL, "Someone Else", ROLE_MEMBER,
                             PASSWORD, clock.now())  # fmt: skip
        db.session.commit()
    taken = confirm(app.test_client(), path)
    assert taken.status_code == 409 and "That address is now taken" in taken.text
    assert email_of(app, owner.owner_id) == OWNER_EMAIL
    assert events(app, EventTag.EMAIL_CHANGE) == [] and len(delivered(app, smtp, clock)) == 1  # no notice
    with app.app_context():
        assert db.session.scalars(select(EmailChange.used_at)).one() is None  # not half spent


@pytest.mark.parametrize(
    ("typed", "message", "status"),
    [
        ("not-an-address", "Enter a whole e-mail address, like name@example.com.", 400),
        ("two words@example.test", "Enter a whole e-mail address, like name@example.com.", 400),
        ("", "This field is required.", 400),
        ("a\x00@example.test", "This field contains characters that are not allowed.", 400),
        (" ADA@Example.TEST ", "That is already your e-mail address.", 400),
        ("x" * 250 + "@example.test", "Field cannot be longer than 254 characters.", 400),
    ],
)
def test_a_bad_address_is_said_next_to_the_field_and_kept(app, ada, smtp, clock, typed, message, status):
    answer = ask(ada, typed)
    assert answer.status_code == status
    assert f'<p class="field__error" id="email-error">{message}</p>' in answer.text
    if typed.strip() and "\x00" not in typed:
        assert f'value="{typed}"' in answer.text
    assert delivered(app, smtp, clock) == [] and events(app, EventTag.EMAIL_CHANGE_REQUEST) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EmailChange)) == 0


def test_at_most_three_requests_an_hour(app, ada, smtp, clock):
    for n in range(3):
        ask_ok(ada, f"try{n}@new.example.test")
    refused = ask(ada, "try3@new.example.test")
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 3600
    assert "You asked for too many changes. Try again in" in refused.text
    assert 'value="try3@new.example.test"' in refused.text
    assert [m["To"] for m in delivered(app, smtp, clock)] == [f"try{n}@new.example.test" for n in range(3)]
    assert "try2@new.example.test" in ada.get("/account").text  # the newest standing request is still the third
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EmailChange)) == 3
    assert len(events(app, EventTag.EMAIL_CHANGE_REQUEST)) == 3


def test_a_sign_in_that_is_not_fresh_confirms_it_is_you_first(app, ada, smtp, clock):
    clock.advance(minutes=app.config["FRESH_AUTH_MINUTES"], seconds=1)
    page = ada.get("/account")
    assert 'action="/account/email"' not in page.text and "confirm it is you first" in page.text
    answer = ada.post("/account/email", data={"email": NEW_EMAIL, "csrf_token": csrf_token_from(page.text)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/account/reauthenticate?next=/account"
    assert delivered(app, smtp, clock) == []
    again = ada.get(answer.headers["Location"])
    back = ada.post(answer.headers["Location"], data={"password": PASSWORD, "next": "/account",
                                                      "csrf_token": csrf_token_from(again.text)})  # fmt: skip
    assert back.headers["Location"] == "/account" and 'action="/account/email"' in ada.get("/account").text


def test_a_post_without_its_csrf_token_changes_nothing(app, ada, owner, smtp, clock):
    assert ada.post("/account/email", data={"email": NEW_EMAIL}).status_code == 400
    assert delivered(app, smtp, clock) == []
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    elsewhere = app.test_client()
    elsewhere.get(path)
    assert elsewhere.post(path).status_code == 400
    assert email_of(app, owner.owner_id) == OWNER_EMAIL
    assert DONE in confirm(elsewhere, path).text  # the link still works


def test_the_new_routes_answer_only_their_methods(app, ada, owner, smtp, clock):
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    csrf = csrf_token_from(ada.get("/account").text)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        assert ada.open("/account/email", method=method, headers={"X-CSRFToken": csrf}).status_code == 405
    for method in ("PUT", "PATCH", "DELETE"):
        assert ada.open(path, method=method, headers={"X-CSRFToken": csrf}).status_code == 405
    assert ada.open(path, method="OPTIONS").status_code == 200
    assert email_of(app, owner.owner_id) == OWNER_EMAIL
    assert app.test_client().post("/account/email", data={"email": NEW_EMAIL}).status_code in (302, 303, 400)


@pytest.mark.parametrize(
    "token",
    ["ghe_a%00b", "ghe_" + "A" * 200, "ghe_%C3%A9t%C3%A9", "ghp_" + "A" * 43, "ghe_" + "A" * 43, "nonsense", "%00"],
    ids=["nul", "too-long", "non-ascii", "wrong-prefix", "unknown", "nonsense", "only-nul"],
)
def test_a_malformed_or_unknown_link_offers_to_start_again(app, client, owner, token):
    page = client.get(CONFIRM_PATH + token)
    assert page.status_code == 404 and INVALID in page.text and 'href="/account">Start again</a>' in page.text
    form = {"csrf_token": csrf_token_from(client.get("/login").text)}
    assert client.post(CONFIRM_PATH + token, data=form).status_code == 404


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_confirmations_at_once_change_it_once(app, ada, owner, smtp, clock):
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    browsers = [app.test_client() for _ in range(6)]
    tokens = [csrf_token_from(b.get(path).text) for b in browsers]
    barrier, answers = threading.Barrier(len(browsers)), []

    def press(browser, csrf):
        barrier.wait()
        answers.append(browser.post(path, data={"csrf_token": csrf}).status_code)

    threads = [threading.Thread(target=press, args=pair) for pair in zip(browsers, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [200] + [404] * (len(browsers) - 1)
    assert len(events(app, EventTag.EMAIL_CHANGE)) == 1
    assert [m["To"] for m in delivered(app, smtp, clock)[1:]] == [OWNER_EMAIL]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_new_user_taking_the_address_during_the_confirmation_wins_and_nothing_is_half_done(
    app, ada, owner, smtp, clock
):
    """The address is free when the confirmation checks it, then an uncommitted new user holds it in the unique
    index: the confirmation waits for that transaction, and when it commits gets the clear page, nothing changed."""
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    browser = app.test_client()
    csrf = csrf_token_from(browser.get(path).text)
    with app.app_context():
        other = db.engine.connect()
        holding = other.begin()
        other.execute(User.__table__.insert().values(account_id=owner.account_id, email=NEW_EMAIL, name="Someone",
                                                     password_hash="x", role=ROLE_MEMBER, created_at=clock.now(),
                                                     password_changed_at=clock.now()))  # fmt: skip
        answers = []
        thread = threading.Thread(target=lambda: answers.append(browser.post(path, data={"csrf_token": csrf})))
        try:
            thread.start()
            _wait_for_a_lock_wait(app)
            holding.commit()
        finally:  # never leave the row locked: the confirmation and the table cleanup would wait on it for ever
            if holding.is_active:
                holding.rollback()
            other.close()
        thread.join(timeout=30)
    [taken] = answers
    assert taken.status_code == 409 and "That address is now taken" in taken.text
    assert email_of(app, owner.owner_id) == OWNER_EMAIL and events(app, EventTag.EMAIL_CHANGE) == []
    with app.app_context():
        assert db.session.scalars(select(EmailChange.used_at)).one() is None


def _wait_for_a_lock_wait(app, seconds: float = 60) -> None:
    """Until another backend of this database waits on a lock (the confirmation's UPDATE on the unique index)."""
    deadline = time.monotonic() + seconds
    # Autocommit: PostgreSQL keeps one snapshot of pg_stat_activity per transaction (a watcher inside one would never
    # see the wait begin if it first looked before it did).
    with app.app_context(), db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND wait_event_type = 'Lock'")).scalar_one()  # fmt: skip
            if waiting:
                return
            time.sleep(0.01)  # waiting for another connection's statement, not standing in for time
    raise AssertionError("the confirmation never waited on the new user's row")


def test_the_link_works_in_a_browser_held_to_set_up_two_step_verification(app, ada, owner, smtp, clock):
    """The link is its own authority: whoever this browser has signed in, even someone whose account requires a
    second factor they have not set up yet (everything else sends them to set one up), does not matter."""
    ask_ok(ada)
    path = mailed_link(app, smtp, clock)
    with app.app_context():
        db.session.get(Account, owner.account_id).two_step_required = True
        db.session.commit()
    held = app.test_client()
    Auth(held).login(email=MEMBER_EMAIL)
    assert held.get("/account").headers["Location"] == "/account/two-step"
    done = confirm(held, path)
    assert done.status_code == 200 and DONE in done.text
    assert email_of(app, owner.owner_id) == NEW_EMAIL
