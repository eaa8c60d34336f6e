"""Password guesses are charged before they are checked (issue 9 items 4 and 14): sign-in, re-authentication and
the password form, one guess at a time through the test client and twenty at once through a real threaded server."""

import threading

import pytest
import requests

from app.audit.models import AuditEvent
from tests.accounts.conftest import count_hasher
from tests.conftest import csrf_token_from, random_suffix
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, PASSWORD, account_with_users
from tests.helpers import serving

GUESSES = 20
STRONG_NEW_PASSWORD = "a brand new passphrase for this test"


def post_login(client, token, email=OWNER_EMAIL, password=PASSWORD):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def failures(app) -> int:
    with app.app_context():
        return len(AuditEvent.tagged("account:sign_in:failure"))


def test_the_per_account_limit_is_shown_in_the_form_with_the_wait(client, owner):
    token = csrf_token_from(client.get("/login").text)
    assert [post_login(client, token, password=f"wrong-{i}").status_code for i in range(5)] == [400] * 5
    blocked = post_login(client, token)  # even the right password, once the account is locked out
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    assert "Too many attempts. Try again in " in blocked.text
    assert f'value="{OWNER_EMAIL}"' in blocked.text  # the form is kept
    assert 'aria-invalid="true"' in blocked.text
    assert post_login(client, token, email=MEMBER_EMAIL).status_code == 303  # other accounts are not affected


def test_successful_sign_ins_cost_nothing(client, auth, owner):
    """Only failed guesses count: a user signing in and out often is never locked out by it."""
    for _ in range(8):
        assert auth.login().status_code == 303
        auth.logout()
    token = csrf_token_from(client.get("/login").text)
    assert [post_login(client, token, password=f"wrong-{i}").status_code for i in range(6)] == [400] * 5 + [429]


def test_a_refused_guess_does_not_use_up_the_other_limit(make_app):
    """Guesses refused for one account are never checked, so they leave the address's budget alone."""
    app = make_app(LOGIN_RATE_LIMIT_PER_IP="8 per minute")
    with app.app_context():
        account_with_users()
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    statuses = [post_login(client, token, password=f"wrong-{i}").status_code for i in range(10)]
    assert statuses == [400] * 5 + [429] * 5
    assert [post_login(client, token, email=f"u{i}@example.test").status_code for i in range(4)] == [400] * 3 + [429]


def test_per_ip_rate_limit(make_app):
    app = make_app(LOGIN_RATE_LIMIT_PER_IP="3 per minute")
    client = app.test_client()
    token = csrf_token_from(client.get("/login").text)
    statuses = [post_login(client, token, email=f"u{i}@example.test").status_code for i in range(4)]
    assert statuses == [400, 400, 400, 429]


def test_reauthentication_is_limited_in_its_own_bucket_and_keeps_its_form(client, auth, owner):
    auth.login()
    page = client.get("/account/reauthenticate?next=/account/devices")
    token = csrf_token_from(page.text)
    data = {"csrf_token": token, "next": "/account/devices"}
    statuses = [client.post("/account/reauthenticate", data=data | {"password": "wrong"}).status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]
    blocked = client.post("/account/reauthenticate", data=data | {"password": PASSWORD})
    assert blocked.status_code == 429 and "Too many attempts. Try again in " in blocked.text
    assert 'value="/account/devices"' in blocked.text
    # The signed-in user's own bucket: sign-in guesses for the e-mail cannot fill it, and it does not fill theirs.
    token = csrf_token_from(client.get("/login").text)
    assert post_login(client, token).status_code == 303


def change(client, current=PASSWORD, new=STRONG_NEW_PASSWORD, confirm=None):
    token = csrf_token_from(client.get("/account").text)
    data = {"csrf_token": token, "current_password": current, "new_password": new, "confirm_password": confirm or new}
    return client.post("/account", data=data)


def test_only_a_wrong_current_password_counts_against_the_password_form(client, auth, owner):
    auth.login()
    for _ in range(6):  # typos: too short, mismatch, empty
        assert change(client, new="short").status_code == 400
        assert change(client, confirm="something else entirely").status_code == 400
        assert change(client, current="").status_code == 400
    statuses = [change(client, current=f"wrong-{i}").status_code for i in range(6)]
    assert statuses == [400] * 5 + [429]
    blocked = change(client)
    assert blocked.status_code == 429
    assert "Too many attempts. Try again in " in blocked.text
    assert 'id="current_password-error"' in blocked.text  # said next to the field, on the form
    assert 'name="new_password"' in blocked.text


# Twenty wrong guesses at once, through a real server: at most the limit's five are ever checked.


@pytest.fixture
def live(request, make_app, database_url):
    """A threaded werkzeug server for the app: PostgreSQL with Redis, or the embedded SQLite with in-process limits."""
    shared = {}
    if database_url.startswith("postgresql"):
        shared = {"REDIS_URL": request.getfixturevalue("redis_url"), "RATELIMIT_KEY_PREFIX": "t" + random_suffix()}
    app = make_app(**shared)
    with app.app_context():
        account_with_users()
    hasher = count_hasher(app)
    with serving(app) as server:
        yield app, hasher, f"http://127.0.0.1:{server.server_port}"


def all_at_once(send) -> list[int]:
    start = threading.Barrier(GUESSES)
    statuses = [None] * GUESSES

    def guess(i: int) -> None:
        start.wait()
        statuses[i] = send(i).status_code

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(statuses)


def browser(base: str, path: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    return session, csrf_token_from(session.get(base + path).text)


def signed_in_browser(base: str, path: str) -> tuple[requests.Session, str]:
    session, token = browser(base, "/login")
    signed_in = session.post(base + "/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 200 and signed_in.url == base + "/"
    return session, csrf_token_from(session.get(base + path).text)


def test_concurrent_wrong_sign_ins_for_one_account_are_checked_at_most_five_times(live):
    app, hasher, base = live
    session, token = browser(base, "/login")
    data = {"email": OWNER_EMAIL, "csrf_token": token}
    statuses = all_at_once(lambda i: session.post(base + "/login", data=data | {"password": f"wrong-{i}"}))
    assert statuses == [400] * 5 + [429] * 15
    assert failures(app) == 5
    assert hasher.calls["verify"] == 5


def test_concurrent_wrong_sign_ins_from_one_address_are_checked_at_most_five_times(live):
    app, hasher, base = live
    app.config["LOGIN_RATE_LIMIT_PER_IP"] = "5 per minute"
    session, token = browser(base, "/login")
    guess = {"password": "wrong", "csrf_token": token}
    statuses = all_at_once(lambda i: session.post(base + "/login", data=guess | {"email": f"u{i}@example.test"}))
    assert statuses == [400] * 5 + [429] * 15
    assert failures(app) == hasher.calls["verify"] == 5


def test_concurrent_wrong_reauthentications_are_checked_at_most_five_times(live):
    app, hasher, base = live
    session, token = signed_in_browser(base, "/account/reauthenticate")
    guess = {"password": "wrong", "csrf_token": token}
    statuses = all_at_once(lambda i: session.post(base + "/account/reauthenticate", data=guess))
    assert statuses == [400] * 5 + [429] * 15
    assert failures(app) == 5
    assert hasher.calls["verify"] == 1 + 5  # the sign-in, then five guesses


def test_concurrent_wrong_current_passwords_are_checked_at_most_five_times(live):
    app, hasher, base = live
    session, token = signed_in_browser(base, "/account")
    new = {"new_password": STRONG_NEW_PASSWORD, "confirm_password": STRONG_NEW_PASSWORD, "csrf_token": token}
    statuses = all_at_once(lambda i: session.post(base + "/account", data=new | {"current_password": f"wrong-{i}"}))
    assert statuses == [400] * 5 + [429] * 15
    assert failures(app) == 5
    assert hasher.calls["verify"] == 1 + 5
