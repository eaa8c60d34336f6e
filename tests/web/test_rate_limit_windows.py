"""Rate-limit windows through the one public charge (`limits`' fixed windows): in this process's memory, without
shared storage, and as the fallback when the shared storage fails."""

import time

import pytest

from app.security.ratelimit import charge, give_back, retry_after

LIMIT = "3 per minute"
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every command fails at once


class Timer:
    """limits reads time.time(); moved like the app's clock, never slept on."""

    def __init__(self):
        self.now = 1_000_020.0  # 20 s into a minute: fixed windows start at the first hit, not on the minute

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timer(monkeypatch) -> Timer:
    timer = Timer()
    monkeypatch.setattr(time, "time", timer)
    return timer


def test_a_window_allows_its_amount_then_says_how_long_to_wait(app_ctx, timer):
    assert [retry_after(LIMIT, "test", "a") for _ in range(3)] == [None, None, None]
    timer.now += 20
    assert retry_after(LIMIT, "test", "a") == 40  # the window opened with the first hit and lasts a minute
    assert retry_after(LIMIT, "test", "b") is None  # keys count apart
    assert retry_after(LIMIT, "other", "a") is None  # and so do scopes


def test_a_new_window_starts_once_the_old_one_ends(app_ctx, timer):
    for _ in range(4):
        retry_after(LIMIT, "test", "a")
    timer.now += 59.5
    assert retry_after(LIMIT, "test", "a") == 1  # never "retry after 0"
    timer.now += 0.5
    assert retry_after(LIMIT, "test", "a") is None


def test_given_back_hits_are_not_counted_and_leave_no_credit_in_a_new_window(app_ctx, timer):
    limits = ((LIMIT, "test", "a"),)
    for _ in range(5):
        assert charge(limits) is None
        give_back(limits)  # only failures count: successes are given back
    timer.now += 61
    give_back(limits)  # the window it was charged to has ended
    assert [charge(limits) for _ in range(4)] == [None, None, None, 60]


def test_a_refusal_uses_up_no_other_window_and_waits_for_the_longest(app_ctx, timer):
    both = (("2 per minute;3 per hour", "test", "a"),)
    assert [charge(both) for _ in range(2)] == [None, None]
    assert charge(both) == 60  # the minute refuses; the hour is given its hit back
    timer.now += 60
    assert charge(both) is None  # the hour's third hit
    assert charge(both) == 3600 - 60  # now the hour refuses, and it lasts longest


def test_a_failed_shared_storage_falls_back_to_this_process_never_to_no_limit(make_app, timer):
    app = make_app(REDIS_URL=DEAD_REDIS_URL)
    with app.app_context():
        assert [retry_after(LIMIT, "test", "a") for _ in range(4)] == [None, None, None, 60]
