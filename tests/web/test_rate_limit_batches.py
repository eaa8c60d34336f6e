"""The client API's limit counted in Redis in batches (app.security.rate_windows.SharedBatches): most hits make no
round trip, yet past half the limit every hit is counted in Redis first, so one process is exact and several let
through at most a batch each beyond the limit; another process's hits are seen within a second."""

import time

import pytest

from app.security.rate_windows import BATCH_DIVISOR, SYNC_SECONDS
from app.security.ratelimit import retry_after_batched
from tests.conftest import random_suffix
from tests.request_costs import redis_round_trips

pytestmark = pytest.mark.redis

BATCH = 10
AMOUNT = BATCH * BATCH_DIVISOR + 5  # 645: a batch of 10, and a limit no batch boundary falls on
LIMIT = f"{AMOUNT} per minute"


class Timer:
    """The windows read time.time(), as `limits` does; moved, never slept on."""

    def __init__(self):
        self.now = 1_000_020.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timer(monkeypatch) -> Timer:
    timer = Timer()
    monkeypatch.setattr(time, "time", timer)
    return timer


@pytest.fixture
def instances(make_app, redis_url):
    """Two processes' worth of limiters on one Redis, with keys of their own."""
    prefix = f"gh-rl-test-{random_suffix()}"
    return [make_app(REDIS_URL=redis_url, RATELIMIT_KEY_PREFIX=prefix) for _ in range(2)]


def hits(app, count: int, key: str = "a") -> list[int | None]:
    with app.app_context():
        return [retry_after_batched(LIMIT, "test", key) for _ in range(count)]


def test_a_batch_of_hits_costs_one_round_trip(instances, timer):
    first, _ = instances
    hits(first, 1)  # connected, the counting script loaded: what a running process has done long ago
    with redis_round_trips() as counted:
        assert hits(first, 200) == [None] * 200
    assert counted.round_trips <= 200 // BATCH + 1  # exact counting would make 200


def test_one_process_is_exact_because_it_counts_one_by_one_past_half_the_limit(instances, timer):
    first, _ = instances
    answers = hits(first, AMOUNT + 2)
    assert answers[:AMOUNT] == [None] * AMOUNT
    assert answers[AMOUNT:] == [60, 60]  # the next is refused, with the wait until the window ends


def test_several_processes_let_through_at_most_a_batch_each_beyond_the_limit(instances, timer):
    first, second = instances
    allowed = 0
    for _ in range(80):  # interleaved: each process holds up to a batch the other has not seen
        allowed += sum(answer is None for answer in hits(first, 5) + hits(second, 5))
    assert AMOUNT <= allowed <= AMOUNT + 2 * BATCH


def test_a_process_sees_the_others_hits_at_its_first_hit_and_then_within_a_second(instances, timer):
    first, second = instances
    assert hits(second, 400) == [None] * 400  # synced: Redis holds 400 (and up to a batch not yet)
    answers = hits(first, 300)  # its first hit reads 400: past half, counted one by one
    assert answers.count(None) == AMOUNT - 400


def test_a_process_reads_the_shared_count_at_least_once_a_second(instances, timer):
    first, second = instances
    hits(first, 1)  # reads the shared count
    with redis_round_trips() as counted:
        hits(first, 3)
        timer.now += SYNC_SECONDS / 2
        hits(first, 3)
    assert counted.round_trips == 0  # batched: the count it read is younger than a second
    assert hits(second, 400) == [None] * 400
    timer.now += SYNC_SECONDS / 2
    with redis_round_trips() as counted:
        hits(first, 1)
    assert counted.round_trips == 1  # its count is a second old: it reads the shared count again, 400 and more ...
    with redis_round_trips() as counted:
        hits(first, 1)
    assert counted.round_trips == 1  # ... past half the limit: every hit is now counted in Redis first


def test_this_process_windows_start_no_thread(app_ctx, timer, monkeypatch):
    """`limits`' MemoryStorage started a timer thread whenever its last had ended: under load, a thread start every
    few requests, more than the rest of a grant check cost."""
    import threading

    from app.security.ratelimit import charge, give_back

    started = []
    original = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread) or original(thread))
    for _ in range(50):
        charge((("5 per minute", "test", "t"),))
        give_back((("5 per minute", "test", "t"),))
        timer.now += 0.05
    assert started == []
