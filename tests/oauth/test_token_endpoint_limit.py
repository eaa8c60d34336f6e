"""The token endpoints' limit on failed client authentication (TOKEN_RATE_LIMIT per presented client id and address),
in this process's windows and in Redis: every attempt is charged before the client is authenticated, so concurrent
guesses can never all pass a check made before any of them counted; a success gives its hit back (issue 13: with
the next charge, in the same round trip, or kept by the process for its next attempt), so a busy client app is never
throttled by its own successes."""

import threading

import pytest

from app.oauth import tokens
from tests.conftest import CACHE_KINDS, app_with_cache, random_suffix
from tests.oauth.conftest import Flow

LIMIT = 3


@pytest.fixture(params=CACHE_KINDS)
def app(request, make_app):
    return app_with_cache(request, make_app, TOKEN_RATE_LIMIT=f"{LIMIT} per minute")


def guess(app, rp) -> int:
    form = {"grant_type": "client_credentials", "client_id": rp.client_id, "client_secret": "ghs_guess"}
    return app.test_client().post("/oauth/token", data=form).status_code


@pytest.mark.parametrize("threads", [12])
def test_concurrent_guesses_never_get_past_the_limit(app, owner, rp, threads, monkeypatch):
    checked = []  # every secret compared: only the guesses the limit let through may get that far
    compare = tokens.client_secret_matches
    monkeypatch.setattr(tokens, "client_secret_matches", lambda *args: checked.append(args) or compare(*args))
    barrier, statuses = threading.Barrier(threads), []

    def worker():
        barrier.wait()
        statuses.append(guess(app, rp))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert sorted(statuses) == [401] * LIMIT + [429] * (threads - LIMIT)
    assert len(checked) == LIMIT


def test_successes_are_given_back_and_only_guesses_fill_the_bucket(app, owner, rp):
    flow = Flow(app, rp).sign_in()
    token = flow.tokens()["refresh_token"]  # one success already
    for _ in range(2 * LIMIT):
        response = flow.refresh(token)
        assert response.status_code == 200
        token = response.json["refresh_token"]
    assert [guess(app, rp) for _ in range(LIMIT + 1)] == [401] * LIMIT + [429]
    assert flow.refresh(token).status_code == 429  # once full, every attempt of that client from there waits


def test_concurrent_successes_are_all_given_back(app, owner, rp):
    flows = [Flow(app, rp).sign_in() for _ in range(LIMIT)]  # as many at once as the limit allows in flight
    tokens = [flow.tokens()["refresh_token"] for flow in flows]
    barrier, statuses = threading.Barrier(len(flows)), []

    def worker(flow, token):
        barrier.wait()
        statuses.append(flow.refresh(token).status_code)

    pool = [threading.Thread(target=worker, args=pair) for pair in zip(flows, tokens, strict=True)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert statuses == [200] * len(flows)
    assert [guess(app, rp) for _ in range(LIMIT + 1)] == [401] * LIMIT + [429]  # none of the successes counted


def test_kept_hits_still_count_so_guesses_on_any_process_stop_at_the_limit(make_app, redis_url, owner, rp, monkeypatch):
    """Two processes on one Redis, with a limit large enough for a success to keep its hit (a quarter of it): the
    hit A keeps still counts, so B's guesses and A's together are checked exactly `limit` times."""
    limit, prefix = 8, f"gh-test-{random_suffix()}:"
    a, b = (make_app(REDIS_URL=redis_url, CACHE_KEY_PREFIX=prefix, RATELIMIT_KEY_PREFIX=prefix + "rl",
                     TOKEN_RATE_LIMIT=f"{limit} per minute") for _ in range(2))  # fmt: skip
    assert Flow(a, rp).sign_in().tokens()["refresh_token"]  # a success on A: its hit kept there
    checked = []
    compare = tokens.client_secret_matches
    monkeypatch.setattr(tokens, "client_secret_matches", lambda *args: checked.append(args) or compare(*args))
    assert [guess(b, rp) for _ in range(limit - 1)] == [401] * (limit - 1)  # the window is full with A's hit
    assert [guess(a, rp) for _ in range(2)] == [401, 429]  # A's kept hit, then none left anywhere
    assert guess(b, rp) == 429
    assert len(checked) == limit
