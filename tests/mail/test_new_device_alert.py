"""New-device alert and its "This wasn't me" link (issue 12 item 4), over HTTP with real forms and a real SMTP server,
on SQLite and PostgreSQL: who gets a mail and when, what it says, and what the link does from any browser."""

import json
import re
import threading

import pytest
from sqlalchemy import func, select

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.mail import delivery
from app.mail.models import MailMessage
from app.oauth.models import OAuthGrant, RefreshToken
from app.sessions.models import KnownDevice, UserSession
from tests.conftest import ORIGIN, Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, PASSWORD, account_with_users
from tests.factors.conftest import app_code, enrolled
from tests.helpers import portal_cookie
from tests.mail.conftest import SENDER
from tests.oauth.conftest import Flow, make_client  # noqa: F401 (a fixture)
from tests.passkeys.soft_authenticator import SoftAuthenticator

SUBJECT = "New sign-in to your Gatehouse account"
RESET_SUBJECT = "Choose a new Gatehouse password"
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
STRANGER_IP = "203.0.113.9"
LINK = re.compile(r"https?://[^\s\"<>]+")
DONE = "We signed out Firefox on Windows and its apps, and sent a link to set a new password to a•••@example.test."
INVALID = "This link no longer works"


@pytest.fixture
def app(make_app, smtp):
    """On ORIGIN (passkeys need http://localhost), delivering to the test's SMTP server."""
    app = make_app(ISSUER=ORIGIN, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_DEFAULT_SENDER=SENDER,
                   MAIL_TIMEOUT_SECONDS=2)  # fmt: skip
    with app.app_context():
        account_with_users()
    return app


def signed_in(app, client=None, email=OWNER_EMAIL):
    client = client or app.test_client()
    answer = Auth(client).login(email=email)
    assert answer.status_code == 303, answer.text
    return client


def stranger(app):
    """The owner's password used on a device they never used (Firefox on Windows, another address)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = STRANGER_IP
    client.environ_base["HTTP_USER_AGENT"] = FIREFOX_ON_WINDOWS
    assert Auth(client).login().status_code == 303
    return client


def delivered(app, smtp, clock, subject=None) -> list:
    with app.app_context():
        delivery.deliver_due(clock.now())
    return [m for m in smtp.recorder.received if subject is None or m["Subject"] == subject]


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def the_link(message) -> str:
    """The alert's one link, the same in both parts."""
    text_links = [u for u in LINK.findall(text_of(message)) if "/not-me/" in u]
    html_links = re.findall(r'href="([^"]+)"', html_of(message))
    assert len(text_links) == 1 and html_links == text_links, (text_links, html_links)
    return text_links[0]


def words(html: str) -> str:
    """A page's text as read: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace(" .", ".")


def path_of(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def confirm(client, path):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return client.post(path, data={"csrf_token": csrf_token_from(page.text)})


def post_again(app, path):
    """The button posted again (a reload, a second tab) by a browser that has a CSRF token."""
    browser = app.test_client()
    return browser.post(path, data={"csrf_token": csrf_token_from(browser.get("/login").text)})


def alert_path(app, smtp, clock) -> str:
    signed_in(app)
    stranger(app)
    [alert] = delivered(app, smtp, clock, SUBJECT)
    return path_of(the_link(alert))


def live_sessions(app, user_id) -> list[UserSession]:
    with app.app_context():
        rows = db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .order_by(UserSession.id)
        ).all()
        db.session.expunge_all()
        return list(rows)


def tagged(app, tag) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == tag)))
        db.session.expunge_all()
        return rows


# Who is alerted


def test_the_first_sign_in_of_an_account_sends_no_alert(app, smtp, clock):
    signed_in(app)
    assert delivered(app, smtp, clock) == []
    with app.app_context():  # the device is remembered all the same
        assert db.session.scalar(select(func.count()).select_from(KnownDevice)) == 1


def test_a_device_seen_before_sends_no_alert(app, smtp, clock):
    browser = signed_in(app)
    Auth(browser).logout()
    clock.advance(days=30)
    signed_in(app, browser)  # the device cookie outlives the session
    signed_in(app, browser, email=MEMBER_EMAIL)  # someone else's first sign-in on it: theirs, and their first
    assert delivered(app, smtp, clock) == []


def test_a_new_device_sends_one_alert_with_what_we_know(app, smtp, clock, owner_id):
    signed_in(app)
    clock.advance(hours=2, minutes=13)
    stranger(app)
    [alert] = delivered(app, smtp, clock)
    assert alert["To"] == OWNER_EMAIL and alert["Subject"] == SUBJECT
    for part in (text_of(alert), html_of(alert)):
        assert "Firefox on Windows" in part and STRANGER_IP in part
        assert "Mon 05 Jan 2026, 11:13 UTC" in part
        assert "Location" not in part  # no GeoIP database: nothing is made up
        assert "you can ignore it" not in part  # the shared footer's sentence would contradict the alert
    link = the_link(alert)
    assert link.startswith(f"{ORIGIN}/not-me/ghn_") and len(link) < 200
    assert PASSWORD not in text_of(alert)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(KnownDevice)) == 2


def test_the_alert_names_the_place_when_a_geoip_database_knows_it(make_app, smtp, clock, tmp_path):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    writer.insert_network(
        IPSet(["203.0.113.0/24"]), {"city": {"names": {"en": "Lisbon"}}, "country": {"names": {"en": "Portugal"}}}
    )
    writer.to_db_file(str(tmp_path / "city.mmdb"))
    app = make_app(GEOIP_DATABASE=str(tmp_path / "city.mmdb"), MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port,
                   MAIL_DEFAULT_SENDER=SENDER)  # fmt: skip
    with app.app_context():
        account_with_users()
    path = alert_path(app, smtp, clock)
    [alert] = delivered(app, smtp, clock, SUBJECT)
    assert "Lisbon, Portugal (approximate)" in text_of(alert) and "Lisbon, Portugal" in html_of(alert)
    assert "Lisbon, Portugal (approximate)" in app.test_client().get(path).text


def test_the_link_is_on_the_issuers_site_whatever_the_host_header(app, smtp, clock):
    signed_in(app)
    forged = app.test_client()
    page = forged.get("/login", headers={"Host": "evil.test"})
    forged.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": csrf_token_from(page.text)},
                headers={"Host": "evil.test"})  # fmt: skip
    [alert] = delivered(app, smtp, clock, SUBJECT)
    assert the_link(alert).startswith(f"{ORIGIN}/not-me/")


def test_a_sign_in_with_an_authenticator_app_from_a_new_device_is_alerted(app, smtp, clock, owner_id):
    signed_in(app)
    with app.app_context():
        enrolment = enrolled(db.session.get(User, owner_id), clock.now())
    client = app.test_client()
    assert Auth(client).login().headers["Location"] == "/login/verify"
    assert delivered(app, smtp, clock) == []  # the password alone opened no session yet
    page = client.get("/login/verify")
    done = client.post("/login/verify", data={"code": app_code(enrolment, clock.now()),
                                              "csrf_token": csrf_token_from(page.text)})  # fmt: skip
    assert done.status_code == 303
    assert len(delivered(app, smtp, clock, SUBJECT)) == 1


def test_a_passkey_sign_in_from_a_new_device_is_alerted(app, smtp, clock):
    signed_in(app)
    authenticator = SoftAuthenticator()
    with app.app_context():
        portal = portal_in_existing(clock)
        portal.register(portal.owner, authenticator)
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    options = client.post("/login/passkey/options", data="{}", headers=headers)
    answer = client.post("/login/passkey", data=json.dumps(authenticator.get(options.text, ORIGIN)), headers=headers)
    assert answer.status_code == 200, answer.text
    [alert] = delivered(app, smtp, clock, SUBJECT)
    assert alert["To"] == OWNER_EMAIL


def portal_in_existing(clock):
    """The passkey harness on this test's account (portal_in would make another)."""
    from tests.passkeys.conftest import Portal

    return Portal(clock, User.by_email(OWNER_EMAIL), User.by_email(MEMBER_EMAIL))


# The link


def test_the_link_from_another_browser_signs_that_device_and_its_apps_out_and_starts_a_reset(
    app,
    smtp,
    clock,
    owner_id,
    make_client,  # noqa: F811
):
    own = signed_in(app)
    flow = Flow(app, make_client(first_party=True))
    flow.browser = stranger(app)
    issued = flow.tokens()  # an app signed in through the intruder's session
    [alert] = delivered(app, smtp, clock, SUBJECT)
    path = path_of(the_link(alert))

    elsewhere = app.test_client()  # a phone's mail app: no cookie of ours
    page = elsewhere.get(path)
    assert page.status_code == 200
    for fact in ("Firefox on Windows", STRANGER_IP, "Mon 05 Jan 2026, 09:00 UTC"):
        assert fact in page.text
    assert page.text.count('type="submit"') == 1 and "Sign out that device and reset my password" in page.text
    assert len(live_sessions(app, owner_id)) == 2  # GET changed nothing

    done = elsewhere.post(path, data={"csrf_token": csrf_token_from(page.text)})
    assert done.status_code == 200 and DONE in words(done.text)
    out = flow.browser.get("/")  # the intruder is out, told it was from elsewhere (not that it "expired")
    assert out.status_code == 302 and out.headers["Location"].startswith("/login?reason=signed_out_elsewhere")
    assert own.get("/").status_code == 200  # the owner's own device stays signed in
    assert flow.refresh(issued["refresh_token"]).status_code == 400
    with app.app_context():
        assert db.session.scalars(select(OAuthGrant).where(OAuthGrant.revoked_at.is_(None))).all() == []
        assert db.session.scalars(select(RefreshToken).where(RefreshToken.revoked_at.is_(None))).all() == []
    [reset] = delivered(app, smtp, clock, RESET_SUBJECT)
    assert reset["To"] == OWNER_EMAIL and "/reset-password/ghp_" in text_of(reset)
    [event] = tagged(app, EventTag.DEVICE_NOT_ME)
    assert event.user_id == owner_id and event.details["device"] == "Firefox on Windows"
    activity = own.get("/account/activity").text
    assert "Reported a sign-in on Firefox on Windows as not theirs; it was signed out" in activity


def test_a_second_report_does_nothing_again(app, smtp, clock, owner_id):
    """Not even to a session the device opened since: that sign-in was alerted with a link of its own."""
    signed_in(app)
    intruder = stranger(app)
    [alert] = delivered(app, smtp, clock, SUBJECT)
    path = path_of(the_link(alert))
    assert DONE in words(confirm(app.test_client(), path).text)
    signed_in(app, intruder)
    assert len(delivered(app, smtp, clock, SUBJECT)) == 2
    again = post_again(app, path)
    assert again.status_code == 200 and "You already told us this sign-in was not you" in again.text
    assert "You already told us" in app.test_client().get(path).text
    assert len(delivered(app, smtp, clock, RESET_SUBJECT)) == 1
    assert len(tagged(app, EventTag.DEVICE_NOT_ME)) == 1
    assert intruder.get("/").status_code == 200


def test_a_sign_in_that_already_ended_is_still_reported(app, smtp, clock, owner_id):
    signed_in(app)
    intruder = stranger(app)
    Auth(intruder).logout()
    [alert] = delivered(app, smtp, clock, SUBJECT)
    done = confirm(app.test_client(), path_of(the_link(alert)))
    assert DONE in words(done.text)
    assert len(delivered(app, smtp, clock, RESET_SUBJECT)) == 1
    assert "You already told us" in post_again(app, path_of(the_link(alert))).text
    assert len(delivered(app, smtp, clock, RESET_SUBJECT)) == 1


def test_the_reported_device_is_alerted_again_and_all_its_sessions_end(app, smtp, clock, owner_id):
    """Signing in again from the reported device (the password still works until it is reset) is alerted again;
    and a report ends every session of the user on that device, not only the one in the mail."""
    signed_in(app)
    intruder = stranger(app)
    [first] = delivered(app, smtp, clock, SUBJECT)
    Auth(intruder).logout()
    signed_in(app, intruder)  # the same device: known, no alert yet
    assert len(delivered(app, smtp, clock, SUBJECT)) == 1
    confirm(app.test_client(), path_of(the_link(first)))
    assert intruder.get("/").status_code == 302
    signed_in(app, intruder)
    assert len(delivered(app, smtp, clock, SUBJECT)) == 2


def test_reporting_the_session_of_this_very_browser_signs_it_out_here(app, smtp, clock):
    signed_in(app)
    intruder = stranger(app)
    [alert] = delivered(app, smtp, clock, SUBJECT)
    done = confirm(intruder, path_of(the_link(alert)))
    assert done.status_code == 200 and DONE in words(done.text)
    assert portal_cookie(intruder) is None and 'action="/logout"' not in done.text


def test_over_the_reset_mail_limit_the_page_says_so(app, smtp, clock):
    path = alert_path(app, smtp, clock)
    asker = app.test_client()
    for n in range(3):
        page = asker.get("/forgot-password")
        asker.post("/forgot-password", data={"email": OWNER_EMAIL, "csrf_token": csrf_token_from(page.text)},
                   environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})  # fmt: skip
    done = confirm(app.test_client(), path)
    assert done.status_code == 200 and "We did not send another link" in done.text
    assert 'href="/forgot-password"' in done.text
    assert len(delivered(app, smtp, clock, RESET_SUBJECT)) == 3


def test_the_link_lasts_seven_days_by_the_apps_clock(app, smtp, clock):
    path = alert_path(app, smtp, clock)
    clock.advance(days=7)
    assert app.test_client().get(path).status_code == 200
    clock.advance(seconds=1)
    page = app.test_client().get(path)
    assert page.status_code == 404 and INVALID in page.text
    form = {"csrf_token": csrf_token_from(app.test_client().get("/login").text)}
    assert app.test_client().post(path, data=form).status_code in (400, 404)
    assert tagged(app, EventTag.DEVICE_NOT_ME) == []


def tampered(path: str) -> str:
    token = path.rsplit("/", 1)[1]
    middle = len(token) // 3
    return f"/not-me/{token[:middle]}{'A' if token[middle] != 'A' else 'B'}{token[middle + 1 :]}"


@pytest.mark.parametrize(
    "bad",
    [
        "tampered",
        "nonsense",
        "x" * 5000,
        "%00",
        "ghn_%00",
        "ghn_abc%00def",
        "ghn_" + "é" * 10,
        "ghn_" + "A" * 300,
        "WzEsMSwxXQ.c2lnbmF0dXJl",
        "ghn_WzEsMSwxXQ.c2lnbmF0dXJl",
        "ghn_[1,1,1]",
    ],
)
def test_a_bad_link_is_a_404_that_offers_to_start_again(app, smtp, clock, bad, owner_id):
    path = tampered(alert_path(app, smtp, clock)) if bad == "tampered" else f"/not-me/{bad}"
    browser = app.test_client()
    page = browser.get(path)
    assert page.status_code == 404 and INVALID in page.text
    assert 'href="/forgot-password"' in page.text and 'href="/login"' in page.text
    answer = browser.post(path, data={"csrf_token": csrf_token_from(browser.get("/login").text)})
    assert answer.status_code == 404
    assert tagged(app, EventTag.DEVICE_NOT_ME) == [] and delivered(app, smtp, clock, RESET_SUBJECT) == []


def test_a_link_for_someone_else_or_another_purpose_is_refused(app, smtp, clock, owner_id):
    """Signed with our key but not a link of ours: another user's id, or the portal cookie's salt."""
    from itsdangerous import URLSafeSerializer

    path = alert_path(app, smtp, clock)
    with app.app_context():
        session_id = live_sessions(app, owner_id)[-1].id
        member = User.by_email(MEMBER_EMAIL).id
    now = int(clock.now().timestamp())
    ours = URLSafeSerializer(app.config["SECRET_KEY"], salt="gatehouse.not-me.v1")
    other_salt = URLSafeSerializer(app.config["SECRET_KEY"], salt="gatehouse.portal-session.v1")
    for token in (ours.dumps([session_id, member, now]), other_salt.dumps([session_id, owner_id, now]),
                  ours.dumps([session_id, owner_id, now + 3600]), ours.dumps([session_id, owner_id])):  # fmt: skip
        assert app.test_client().get(f"/not-me/ghn_{token}").status_code == 404, token
    assert path == f"/not-me/ghn_{ours.dumps([session_id, owner_id, now])}"  # only the changes above fail


def test_a_link_signed_with_a_previous_key_still_works(make_app, smtp, clock):
    old_key = "the-previous-secret-key-" + "y" * 32
    before = make_app(SECRET_KEY=old_key, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_DEFAULT_SENDER=SENDER)
    with before.app_context():
        account_with_users()
    path = alert_path(before, smtp, clock)
    after = make_app(SECRET_KEY_FALLBACKS=[old_key], MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port,
                     MAIL_DEFAULT_SENDER=SENDER)  # fmt: skip
    assert after.test_client().get(path).status_code == 200
    assert make_app().test_client().get(path).status_code == 404  # without it: not ours


def test_the_link_of_a_disabled_person_no_longer_works(app, smtp, clock, owner_id):
    """Disabling ended every session already, and a reset link could not be used: nothing to do but say so."""
    path = alert_path(app, smtp, clock)
    with app.app_context():
        db.session.get(User, owner_id).disabled_at = clock.now()
        db.session.commit()
    assert app.test_client().get(path).status_code == 404
    assert delivered(app, smtp, clock, RESET_SUBJECT) == []


def test_without_the_csrf_token_nothing_happens(app, smtp, clock, owner_id):
    path = alert_path(app, smtp, clock)
    browser = app.test_client()
    browser.get(path)
    assert browser.post(path).status_code == 400
    assert browser.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert len(live_sessions(app, owner_id)) == 2
    assert tagged(app, EventTag.DEVICE_NOT_ME) == [] and delivered(app, smtp, clock, RESET_SUBJECT) == []


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_refused(app, smtp, clock, owner_id, method):
    path = alert_path(app, smtp, clock)
    assert app.test_client().open(path, method=method).status_code == 405
    assert app.test_client().head(path).status_code == 200
    assert len(live_sessions(app, owner_id)) == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_first_sign_ins_and_reports_do_not_crash(app, smtp, clock, owner_id):
    """Two new devices at once, then the same link confirmed twice at once: no 500, one report, one reset mail."""
    signed_in(app)
    barrier, statuses = threading.Barrier(4), []
    clients = [app.test_client() for _ in range(4)]
    pages = [c.get("/login") for c in clients]

    def sign_in(client, page):
        barrier.wait()
        answer = client.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD,
                                             "csrf_token": csrf_token_from(page.text)})  # fmt: skip
        statuses.append(answer.status_code)

    run_together([lambda c=c, p=p: sign_in(c, p) for c, p in zip(clients, pages, strict=True)])
    assert statuses == [303] * 4
    alerts = delivered(app, smtp, clock, SUBJECT)
    assert len(alerts) == 4

    path = path_of(the_link(alerts[0]))
    reporters = [app.test_client() for _ in range(2)]
    forms = [csrf_token_from(r.get(path).text) for r in reporters]
    barrier, answers = threading.Barrier(2), []

    def report(client, token):
        barrier.wait()
        answers.append(client.post(path, data={"csrf_token": token}))

    run_together([lambda c=c, t=t: report(c, t) for c, t in zip(reporters, forms, strict=True)])
    assert sorted(a.status_code for a in answers) == [200, 200]
    assert sum("You already told us" in a.text for a in answers) == 1
    assert len(tagged(app, EventTag.DEVICE_NOT_ME)) == 1
    assert len(delivered(app, smtp, clock, RESET_SUBJECT)) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_first_sign_ins_of_a_new_account_do_not_crash(app, smtp, clock):
    barrier, statuses = threading.Barrier(3), []
    clients = [app.test_client() for _ in range(3)]
    pages = [c.get("/login") for c in clients]

    def sign_in(client, page):
        barrier.wait()
        answer = client.post("/login", data={"email": MEMBER_EMAIL, "password": PASSWORD,
                                             "csrf_token": csrf_token_from(page.text)})  # fmt: skip
        statuses.append(answer.status_code)

    run_together([lambda c=c, p=p: sign_in(c, p) for c, p in zip(clients, pages, strict=True)])
    assert statuses == [303] * 3
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(KnownDevice)) == 3


def test_one_device_signing_in_twice_at_once_remembers_it_once(app, clock, owner_id):
    """KnownDevice.remember: the second insert of one (user, device) is not new, on both databases."""
    with app.app_context():
        assert KnownDevice.remember(owner_id, "d" * 22, clock.now())
        assert not KnownDevice.remember(owner_id, "d" * 22, clock.now())
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(KnownDevice)) == 1


def run_together(calls) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


@pytest.fixture
def owner_id(app) -> int:
    with app.app_context():
        return User.by_email(OWNER_EMAIL).id


def test_the_outbox_holds_the_alert_in_the_sign_ins_transaction(app, clock):
    """Queued with the sign-in (same commit), never sent by the request itself."""
    signed_in(app)
    stranger(app)
    with app.app_context():
        [message] = db.session.scalars(select(MailMessage)).all()
        assert message.template == "new_device" and message.recipient == OWNER_EMAIL


def test_the_link_works_for_someone_held_to_set_up_two_step_verification(app, smtp, clock):
    """An account that requires two-step verification sends its people without a second factor to set one up on
    every page; the alert's link is not one of those pages: it is its own authority, whoever is signed in."""
    path = alert_path(app, smtp, clock)
    with app.app_context():
        db.session.scalar(select(User).where(User.email == OWNER_EMAIL)).account.two_step_required = True
        db.session.commit()
    own = signed_in(app)
    assert own.get("/").status_code == 303  # held: sent to /account/two-step
    done = confirm(own, path)
    assert done.status_code == 200 and DONE in words(done.text)
