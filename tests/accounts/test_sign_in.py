"""Sign-in: generic failures, CSRF, safe `next`, rate limits, device metadata, audit (DESIGN §3, §8)."""

import logging
import warnings

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.sessions.models import UserSession
from tests.conftest import SECRET_KEY, Auth, csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.helpers import PORTAL_COOKIE, portal_cookie, sessions_of, set_cookies

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"


def session_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(UserSession))


def post_login(client, token, email=OWNER_EMAIL, password=PASSWORD, **extra):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, **extra})


def test_unknown_email_and_wrong_password_get_the_same_answer(client, owner):
    token = csrf_token_from(client.get("/login").text)
    unknown = post_login(client, token, email="nobody@example.test")
    wrong = post_login(client, token, password="not the password")
    assert unknown.status_code == wrong.status_code == 400
    assert "Invalid email or password." in unknown.text

    # Each page carries a fresh CSRF token, timestamped to the second: compare the pages without it.
    def page(response, email):
        return response.text.replace(csrf_token_from(response.text), "TOKEN").replace(email, OWNER_EMAIL)

    assert page(unknown, "nobody@example.test") == page(wrong, OWNER_EMAIL)
    assert PORTAL_COOKIE not in set_cookies(unknown) | set_cookies(wrong)


def test_failed_sign_in_keeps_the_email_and_is_audited_without_secrets(app, client, owner):
    token = csrf_token_from(client.get("/login").text)
    response = post_login(client, token, password="wrong-password-123")
    assert f'value="{OWNER_EMAIL}"' in response.text
    with app.app_context():
        [event] = AuditEvent.tagged("account:sign_in:failure")
        assert event.user_id == owner.owner_id
        assert "wrong-password-123" not in str(event.details)


@pytest.mark.parametrize("attempt", [1, 2])  # the first sign-in of a new app included: nothing is made on first use
def test_unknown_and_known_emails_cost_the_hasher_the_same(client, owner, hasher_clock, attempt):
    """Catalogue #53, issue 9 item 3: same argon2 work for both, counted on the hasher, not timed."""
    token = csrf_token_from(client.get("/login").text)
    costs = []
    for email in ["nobody@example.test", OWNER_EMAIL] if attempt == 1 else [OWNER_EMAIL, "nobody@example.test"]:
        hasher_clock.calls.clear()
        assert post_login(client, token, email=email, password="wrong-password").status_code == 400
        costs.append(dict(hasher_clock.calls))
    assert costs == [{"verify": 1}, {"verify": 1}]


def test_successful_sign_in_is_audited_and_rotates_the_csrf_token(app, client, auth, owner):
    before = csrf_token_from(client.get("/login").text)
    assert auth.login().status_code == 303
    after = csrf_token_from(client.get("/").text)
    assert before != after
    with app.app_context():
        [event] = AuditEvent.tagged("account:sign_in:success")
        assert event.user_id == owner.owner_id
        assert event.session_id is not None


@pytest.mark.parametrize("token", [None, "", "forged-token", "wrong.signature.value"])
def test_login_without_a_valid_csrf_token_is_refused_and_changes_nothing(app, client, owner, token):
    client.get("/login")
    data = {"email": OWNER_EMAIL, "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/login", data=data)
    assert response.status_code == 400
    assert "did not come from this site" in response.text
    assert session_count(app) == 0


def test_csrf_token_of_another_browser_is_refused(app, client, owner):
    other = app.test_client()
    token = csrf_token_from(other.get("/login").text)
    client.get("/login")
    assert post_login(client, token).status_code == 400
    assert session_count(app) == 0


def test_stale_csrf_token_is_refused(app, client, owner):
    client.get("/login")
    with client.session_transaction() as flask_session:
        raw = flask_session["csrf_token"]

    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return super().get_timestamp() - 7200

    stale = URLSafeTimedSerializer(SECRET_KEY, salt="wtf-csrf-token", signer=TwoHoursAgo).dumps(raw)
    response = post_login(client, stale)
    assert response.status_code == 400
    assert "expired" in response.text
    assert session_count(app) == 0


def test_logout_needs_csrf_and_keeps_the_session_without_it(app, client, auth, owner):
    auth.login()
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200
    assert sessions_of(app, owner.owner_id)[0].revoked_at is None


def test_logout_is_post_only(client, auth, owner):
    auth.login()
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "//evil.test",
        "https://evil.test",
        "http://evil.test/path",
        "/\\evil.test",
        "\\\\evil.test",
        "javascript:alert(1)",
        "/\t/evil.test",
        "/%0a/evil.test\n",
        "https:evil.test",
        "evil.test",
        "",
    ],
)
def test_next_never_leaves_the_site(client, owner, target):
    page = client.get("/login", query_string={"next": target})
    response = post_login(client, csrf_token_from(page.text), next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_next_keeps_a_plain_path(client, owner):
    page = client.get("/login?next=/session/status")
    assert 'value="/session/status"' in page.text
    response = post_login(client, csrf_token_from(page.text), next="/session/status")
    assert response.headers["Location"] == "/session/status"


def test_forwarded_for_is_ignored_without_a_trusted_proxy(app, client, auth, owner):
    auth.login(**{"X-Forwarded-For": "1.2.3.4"})
    assert sessions_of(app, owner.owner_id)[0].ip == "127.0.0.1"


def test_forwarded_for_is_used_behind_one_trusted_proxy(make_app):
    app = make_app(TRUSTED_PROXY_COUNT=1)
    with app.app_context():
        from tests import factories

        people = factories.account_with_users()
    Auth(app.test_client()).login(**{"X-Forwarded-For": "203.0.113.9"})
    assert sessions_of(app, people.owner_id)[0].ip == "203.0.113.9"


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (CHROME_MAC, "Chrome on macOS"),
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        ("", "Unknown device"),
        ("\x01\x02???", "Unknown device"),
    ],
)
def test_device_name_comes_from_the_user_agent(app, client, auth, owner, agent, name):
    auth.login(**{"User-Agent": agent})
    assert sessions_of(app, owner.owner_id)[0].device_name == name


def test_device_cookie_is_set_once_and_reused(app, client, auth, owner):
    first = auth.login()
    device = set_cookies(first)["gh_did"]
    assert device["httponly"] and device["samesite"] == "Lax"
    assert int(device["max-age"]) > 365 * 24 * 3600
    auth.logout()
    second = auth.login()
    assert "gh_did" not in set_cookies(second)
    rows = sessions_of(app, owner.owner_id)
    assert rows[0].device_id == rows[1].device_id == device.value


def test_a_malformed_device_cookie_is_replaced(app, client, auth, owner):
    client.set_cookie("gh_did", "<script>")
    response = auth.login()
    assert set_cookies(response)["gh_did"].value != "<script>"
    assert sessions_of(app, owner.owner_id)[0].device_id == set_cookies(response)["gh_did"].value


BAD_COOKIES = {
    "tampered": lambda good: good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
    "other_salt": lambda good: URLSafeTimedSerializer(SECRET_KEY, salt="cookie-session").dumps({"a": 1}),
    "empty": lambda good: "",
    "ten_kb": lambda good: "A" * 10_000,
    "garbage": lambda good: "%%%not-base64%%%",
}


@pytest.mark.parametrize("kind", sorted(BAD_COOKIES))
def test_bad_cookies_are_anonymous_with_one_warning(app, client, auth, owner, caplog, kind):
    auth.login()
    bad = BAD_COOKIES[kind](portal_cookie(client))
    stranger = app.test_client()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the test client itself warns about a 10 kB cookie
        stranger.set_cookie(PORTAL_COOKIE, bad)
    with caplog.at_level(logging.WARNING, logger="gatehouse.auth"):
        response = stranger.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"
    logged = [r for r in caplog.records if r.name == "gatehouse.auth"]
    assert len(logged) == 1
    if bad:
        assert bad not in caplog.text  # catalogue #3: cookie values never reach the log
