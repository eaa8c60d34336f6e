"""Durable cache invalidation (issue 9, item 2): a revocation made while Redis hangs is recorded in the revoking
transaction, and every instance refuses the revoked session and grant within 2 s of Redis answering again,
whichever process made the revocation and even if it is gone right after its commit."""

import signal

import pytest
import redis
from sqlalchemy import func, select

from app.cache import OUTBOX_RECHECK_SECONDS, STALE, Invalidation, cache
from app.extensions import db
from app.invalidation.models import CacheInvalidation
from app.invalidation.services import REPLAY_BATCH_SIZE, invalidate, replay_pending
from app.sessions.services import CACHE_KEY_PREFIX, TOMBSTONE
from tests.client_api.test_internal_endpoints import verify
from tests.conftest import Auth, random_suffix
from tests.helpers import PORTAL_COOKIE, portal_cookie
from tests.oauth.conftest import Flow, registered_client

pytestmark = pytest.mark.redis

PROMISED_BOUND_SECONDS = 2


@pytest.fixture
def instance(make_app, private_redis):
    """Build instances sharing one (private, pausable) Redis, as gunicorns behind a load balancer would."""
    prefix = f"gh-test-{random_suffix()}:"

    def build():
        return make_app(REDIS_URL=private_redis.url, CACHE_KEY_PREFIX=prefix, RATELIMIT_KEY_PREFIX=prefix + "rl",
                        REDIS_RETRY_AFTER_SECONDS=0)  # fmt: skip

    return build


@pytest.fixture
def app(instance):
    """The revoking instance (A); the OAuth fixtures register their clients through it."""
    return instance()


def outbox(app) -> list[tuple[str, bytes | None, int]]:
    with app.app_context():
        columns = (CacheInvalidation.cache_key, CacheInvalidation.value, CacheInvalidation.ttl_seconds)
        rows = db.session.execute(select(*columns).order_by(CacheInvalidation.id)).all()
        db.session.rollback()
        return [tuple(row) for row in rows]


class Thief:
    """A browser on B replaying the victim's cookie on every request (a refusal clears it; a thief keeps it)."""

    def __init__(self, other, cookie: str):
        self.client, self.cookie = other.test_client(), cookie

    def refused(self) -> bool:
        self.client.set_cookie(PORTAL_COOKIE, self.cookie)
        response = self.client.get("/")
        if response.status_code == 200:
            return False
        assert response.status_code == 302, response.status_code
        return response.headers["Location"].startswith("/login")


def signed_in_elsewhere(app, other):
    """A victim signed in on A, and a thief replaying their cookie on B (which caches it as alive)."""
    victim = app.test_client()
    Auth(victim).login()
    thief = Thief(other, portal_cookie(victim))
    assert not thief.refused()
    return victim, thief


def test_the_tombstone_is_recorded_in_the_revoking_transaction_and_removed_once_redis_has_it(app, owner, private_redis):
    victim = app.test_client()
    Auth(victim).login()
    Auth(victim).logout()
    assert outbox(app) == []  # Redis took it at once: nothing left behind
    Auth(victim).login()
    private_redis.signal(signal.SIGSTOP)
    Auth(victim).logout()
    private_redis.signal(signal.SIGCONT)
    [(key, value, ttl)] = outbox(app)
    assert key.startswith(CACHE_KEY_PREFIX) and value == TOMBSTONE and ttl == app.config["SESSION_CACHE_TTL_SECONDS"]


def test_an_instance_that_saw_no_fault_refuses_within_the_bound_though_the_revoker_is_gone(
    app, instance, owner, private_redis, clock
):
    other = instance()
    victim, thief = signed_in_elsewhere(app, other)
    private_redis.signal(signal.SIGSTOP)
    Auth(victim).logout()  # A commits, cannot reach Redis, and is never heard of again (killed after commit)
    private_redis.signal(signal.SIGCONT)
    assert len(outbox(app)) == 1
    clock.advance(seconds=OUTBOX_RECHECK_SECONDS)  # B heard of no fault: it looks at the outbox on this schedule
    assert OUTBOX_RECHECK_SECONDS <= PROMISED_BOUND_SECONDS
    assert thief.refused()
    assert outbox(app) == []  # B replayed the tombstone into Redis and removed it


def test_an_instance_that_saw_the_fault_replays_the_outbox_before_trusting_redis_again(
    app, instance, owner, private_redis
):
    other = instance()
    victim, thief = signed_in_elsewhere(app, other)
    private_redis.signal(signal.SIGSTOP)
    Auth(victim).logout()
    assert thief.refused()  # B times out on Redis and asks the database
    private_redis.signal(signal.SIGCONT)
    assert thief.refused()  # the clock has not moved: B looked at the outbox because of its own fault
    assert outbox(app) == []


def test_the_worker_replays_what_the_revoker_left(app, instance, owner, private_redis):
    other = instance()
    victim, thief = signed_in_elsewhere(app, other)
    private_redis.signal(signal.SIGSTOP)
    Auth(victim).logout()
    private_redis.signal(signal.SIGCONT)
    worker = instance()
    result = worker.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert outbox(app) == []
    assert thief.refused()  # B trusts Redis (no fault, clock unmoved), and Redis has the tombstone


def test_a_grant_revoked_during_a_hang_is_revoked_on_every_instance(app, instance, owner, private_redis, clock):
    other = instance()
    rp = registered_client(app, clock, first_party=True)
    flow = Flow(app, rp).sign_in()
    grant = flow.tokens()["grant_token"]
    assert verify(other, rp, grant).json["active"] is True  # B caches "active" (and the client) in Redis
    private_redis.signal(signal.SIGSTOP)
    Auth(flow.browser).logout()  # the grant's tombstone cannot reach Redis
    private_redis.signal(signal.SIGCONT)
    clock.advance(seconds=OUTBOX_RECHECK_SECONDS)
    assert verify(other, rp, grant).json == {"active": False, "reason": "revoked"}
    assert verify(app, rp, grant).json == {"active": False, "reason": "revoked"}


def test_a_revocation_made_while_redis_is_dead_is_delivered_to_the_restarted_redis(app, instance, owner, private_redis):
    other = instance()
    victim, thief = signed_in_elsewhere(app, other)
    private_redis.kill()
    Auth(victim).logout()
    assert thief.refused()  # a dead Redis means the database answers
    private_redis.start()
    assert thief.refused()
    assert outbox(app) == []


def test_a_long_outage_is_replayed_in_batches_in_the_order_it_happened(app, private_redis):
    values = [Invalidation(f"t:{n}", b"value", 60) for n in range(2 * REPLAY_BATCH_SIZE + 1)]
    changes = [*values, Invalidation("t:0")]  # t:0 is marked stale after its value was written
    private_redis.signal(signal.SIGSTOP)
    with app.app_context():
        invalidate(changes)
        db.session.commit()
    private_redis.signal(signal.SIGCONT)
    assert len(outbox(app)) == len(changes)
    with app.app_context():
        assert replay_pending(cache()) is True
    assert outbox(app) == []
    stored = redis.Redis.from_url(private_redis.url)
    prefix = app.config["CACHE_KEY_PREFIX"]
    assert stored.get(prefix + "t:0") == STALE
    assert stored.get(prefix + f"t:{2 * REPLAY_BATCH_SIZE}") == b"value"


def test_an_unshared_cache_needs_no_outbox(make_app, owner):
    app = make_app()  # the embedded default: the in-process cache dies with its process, nothing to replay
    victim = app.test_client()
    Auth(victim).login()
    Auth(victim).logout()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CacheInvalidation)) == 0
