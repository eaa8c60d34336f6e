"""The token endpoints' limit on failed client authentication (TOKEN_RATE_LIMIT per presented client id and address),
in this process's windows and in Redis: every attempt is charged before the client is authenticated, so concurrent
guesses can never all pass a check made before any of them counted; a success gives its hit back (issue 13: with
the next charge, in the same round trip, or kept by the process for its next attempt), so a busy client app is never
throttled by its own successes."""

import threading
import time

import pytest
from limits import parse
from limits.storage import storage_from_string

from app.oauth import tokens
from app.security import token_limit
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


def redis_app(make_app, redis_url, limit: int):
    prefix = f"gh-test-{random_suffix()}:"
    return make_app(REDIS_URL=redis_url, CACHE_KEY_PREFIX=prefix, RATELIMIT_KEY_PREFIX=prefix + "rl",
                    TOKEN_RATE_LIMIT=f"{limit} per minute")  # fmt: skip


def not_authenticated(app, rp) -> int:
    """A 400 before any client authentication (a repeated parameter): not a failure, not a success either."""
    form = {"grant_type": ["client_credentials"] * 2, "client_id": rp.client_id}
    return app.test_client().post("/oauth/token", data=form).status_code


def test_only_a_success_keeps_its_hit_so_a_redis_that_forgets_lets_no_guess_more(make_app, redis_url, owner, rp,
                                                                                 monkeypatch):  # fmt: skip
    """Answers other than a success give their hit back to Redis: after Redis lost its counters (a restart without
    persistence), nothing this process kept lets a guesser past the limit."""
    limit = 8
    app = redis_app(make_app, redis_url, limit)
    assert [not_authenticated(app, rp) for _ in range(limit // 4)] == [400] * (limit // 4)
    storage = app.extensions[token_limit.EXTENSION_KEY]._storage
    connection = storage.get_connection()
    own = storage.prefixed_key(f"LIMITER/{app.config['RATELIMIT_KEY_PREFIX']}/*")  # this test's counters only
    for key in connection.scan_iter(match=own):
        connection.delete(key)
    checked = []
    compare = tokens.client_secret_matches
    monkeypatch.setattr(tokens, "client_secret_matches", lambda *args: checked.append(args) or compare(*args))
    assert [guess(app, rp) for _ in range(limit + 1)] == [401] * limit + [429]
    assert len(checked) == limit


def test_a_process_keeps_hits_for_a_bounded_number_of_counters(make_app, redis_url, owner, rp, monkeypatch):
    """Successes from ever new addresses (each its own counter) cannot grow what a process keeps without bound."""
    monkeypatch.setattr(token_limit, "MAX_COUNTERS", 16)
    prefix = f"gh-test-{random_suffix()}:"
    app = make_app(REDIS_URL=redis_url, CACHE_KEY_PREFIX=prefix, RATELIMIT_KEY_PREFIX=prefix + "rl",
                   TOKEN_RATE_LIMIT="20 per minute", TRUSTED_PROXY_COUNT=1)  # fmt: skip
    api = app.test_client()
    for i in range(40):
        answer = api.post("/oauth/introspect", data=rp.auth() | {"token": "x"},
                          headers={"X-Forwarded-For": f"203.0.113.{i}"})  # fmt: skip
        assert answer.status_code == 200 and answer.json == {"active": False}
    assert len(app.extensions[token_limit.EXTENSION_KEY]._kept) == 16


def test_a_hit_whose_window_has_ended_is_not_kept_for_the_next(redis_url):
    shared = token_limit.SharedTokenLimit(storage_from_string(redis_url))
    item, counter = parse("8 per second"), f"test-{random_suffix()}"
    ends = time.time() + 0.9
    shared.give_back(item, counter, ends, True)  # a success in the current window
    shared.give_back(item, counter, time.time() - 0.05, True)  # a slow one of the window before
    assert shared.take_kept([(item, counter)]) == [ends]
    assert shared.take_kept([(item, counter)]) is None
