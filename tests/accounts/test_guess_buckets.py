"""Which bucket a password guess is charged to (security review of issue 9 items 4 and 14): signed-in guesses in the
user's own bucket, which anonymous sign-in guesses cannot fill; addresses counted per IPv4 address or IPv6 /64; the
longest refusing window in Retry-After; the range API asked only after the guess. In-process limits and Redis."""

import pytest

from tests.accounts.test_password_rules import RangeAPI
from tests.conftest import Auth, csrf_token_from, random_suffix
from tests.factories import OWNER_EMAIL, PASSWORD, account_with_users

NEW_PASSWORD = "a brand new passphrase for this test"


@pytest.fixture(params=["in-process", "redis"])
def limited(request, make_app):
    """Build an app with the given settings, its limits counted in this process or in Redis."""

    def build(**overrides):
        if request.param == "redis":
            overrides |= {"REDIS_URL": request.getfixturevalue("redis_url"), "RATELIMIT_KEY_PREFIX": random_suffix()}
        app = make_app(**overrides)
        with app.app_context():
            account_with_users()
        return app

    return build


def sign_in_attempt(client, email=OWNER_EMAIL, ip="198.51.100.1"):
    environ = {"REMOTE_ADDR": ip}
    token = csrf_token_from(client.get("/login", environ_base=environ).text)
    data = {"email": email, "password": "a wrong guess at it", "csrf_token": token}
    return client.post("/login", data=data, environ_base=environ)


def change(client, current=PASSWORD, new=NEW_PASSWORD):
    token = csrf_token_from(client.get("/account").text)
    data = {"csrf_token": token, "current_password": current, "new_password": new, "confirm_password": new}
    return client.post("/account", data=data)


def reauthenticate(client, password=PASSWORD):
    token = csrf_token_from(client.get("/account/reauthenticate").text)
    return client.post("/account/reauthenticate", data={"csrf_token": token, "password": password})


def test_anonymous_guesses_cannot_lock_a_signed_in_user_out_of_their_own_password_checks(limited):
    app = limited()
    victim = app.test_client()
    Auth(victim).login()
    attacker = app.test_client()
    statuses = [sign_in_attempt(attacker, ip=f"198.51.100.{i + 1}").status_code for i in range(21)]
    assert statuses[-1] == 429  # the account's sign-in bucket is full
    assert reauthenticate(victim).status_code == 303
    assert change(victim).status_code == 303


def test_signed_in_guesses_are_still_limited_and_say_the_longest_wait(limited):
    app = limited(LOGIN_RATE_LIMIT_PER_ACCOUNT="3 per minute;3 per hour")
    client = app.test_client()
    Auth(client).login()
    assert [reauthenticate(client, f"wrong-{i}").status_code for i in range(3)] == [400] * 3
    refused = change(client, current="still wrong")  # both windows are full: the hour's wait, not the minute's
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 60


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"),  # one /64
        ("203.0.113.7", "::ffff:203.0.113.7"),  # IPv4-mapped
    ],
)
def test_the_per_address_limit_counts_an_ipv6_64_or_an_ipv4_address_however_written(limited, first, second):
    app = limited(LOGIN_RATE_LIMIT_PER_IP="3 per minute")
    client = app.test_client()
    ips = [first, second, first, second]
    statuses = [sign_in_attempt(client, email=f"u{i}@example.test", ip=ip).status_code for i, ip in enumerate(ips)]
    assert statuses == [400, 400, 400, 429]
    assert sign_in_attempt(client, email="other@example.test", ip="2001:db8:1:3::1").status_code == 400


@pytest.fixture
def api():
    api = RangeAPI()
    yield api
    api.close()


def test_the_range_api_is_asked_only_after_the_current_password_is_right(limited, api):
    app = limited(PASSWORD_RANGE_API_URL=api.url)
    client = app.test_client()
    Auth(client).login()
    api.received.clear()  # the users' own passwords were checked when they were created
    assert [change(client, current=f"wrong-{i}").status_code for i in range(6)] == [400] * 5 + [429]
    assert api.received == []
    assert change(client, new="also not a local rule's problem").status_code == 429
    assert api.received == []
