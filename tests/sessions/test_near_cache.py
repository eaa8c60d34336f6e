"""The near cache in front of Redis (app.near_cache): a warm session or grant check makes no round trip, and the
revocation promise stands. Instance A revokes; instance B, whose every connection to the same Redis goes through a
proxy (tests/redis_proxy.py), answers "revoked" at once: when its link is slow, A waits for B's acknowledgement;
when it is broken, A waits out B's lease; under load, no answer B starts after A's revocation returned is "active".
"""

import signal
import time

import pytest
import redis

from app.cache import Invalidation, cache
from app.near_cache import LEASE_SECONDS, LISTENER_NAME, NearCache
from tests.client_api.test_internal_endpoints import verify
from tests.conftest import Auth, random_suffix
from tests.helpers import PORTAL_COOKIE, assert_no_active_answer_after, portal_cookie
from tests.oauth.conftest import Flow, registered_client
from tests.redis_proxy import RedisProxy
from tests.request_costs import redis_round_trips, sql_statements

pytestmark = pytest.mark.redis

ACTIVE_WITHIN_SECONDS = 5  # bound on waiting for a real thread (the listener) to renew its first lease
REVOKED = {"active": False, "reason": "revoked"}


@pytest.fixture
def proxy(private_redis):
    proxy = RedisProxy(private_redis.port)
    yield proxy
    proxy.close()


@pytest.fixture
def lease() -> float:
    return LEASE_SECONDS


@pytest.fixture
def cluster(make_app, private_redis, proxy, lease):
    """A on Redis directly, B through the proxy: two instances' worth of apps on one database and one Redis."""
    prefix = f"gh-test-{random_suffix()}:"

    def build(url):
        return make_app(REDIS_URL=url, CACHE_KEY_PREFIX=prefix, RATELIMIT_KEY_PREFIX=prefix + "rl",
                        REDIS_RETRY_AFTER_SECONDS=0, NEAR_CACHE_LEASE_SECONDS=lease)  # fmt: skip

    return build(private_redis.url), build(proxy.url)


@pytest.fixture
def granted(cluster, owner, clock):
    """A signed-in browser on A, a client app and its grant, and B answering the grant from its near cache."""
    a, b = cluster
    rp = registered_client(a, clock, first_party=True)
    flow = Flow(a, rp).sign_in()
    grant = flow.tokens()["grant_token"]
    served_from_near_cache(b, lambda: verify(b, rp, grant).json["active"] is True)
    return flow, rp, grant


def served_from_near_cache(app, call, allowed: int = 0) -> None:
    """Repeat call (which must hold) until one makes no Redis round trip (or only the `allowed` ones the call makes
    anyway): the listener has renewed its lease and the entries are kept (a real thread: bounded waiting, not
    standing in for the app clock)."""
    deadline = time.monotonic() + ACTIVE_WITHIN_SECONDS
    while True:
        with redis_round_trips() as counted:
            assert call()
        if counted.round_trips <= allowed:
            return
        assert time.monotonic() < deadline, "the near cache never became usable"
        time.sleep(0.02)


def test_warm_grant_and_status_checks_make_no_round_trip_and_no_statement(cluster, granted):
    a, b = cluster
    flow, rp, grant = granted
    served_from_near_cache(a, lambda: flow.browser.get("/session/status").status_code == 200)
    with redis_round_trips() as counted, sql_statements(a) as sql:
        for _ in range(10):
            assert verify(b, rp, grant).json["active"] is True
            assert flow.browser.get("/session/status").status_code == 200
    assert counted.round_trips == 0
    assert (sql.statements, sql.commits) == ([], 0)


def test_over_a_slow_link_the_revocation_waits_for_the_other_instances_acknowledgement(cluster, granted, proxy):
    _, b = cluster
    flow, rp, grant = granted
    proxy.delay(0.3)  # B hears of the invalidation 0.3 s after Redis sends it
    Auth(flow.browser).logout()
    proxy.resume()
    assert verify(b, rp, grant).json == REVOKED


def test_with_the_other_instances_link_broken_the_revocation_waits_out_its_lease(cluster, granted, proxy):
    _, b = cluster
    flow, rp, grant = granted
    proxy.hang()  # B can neither hear of the invalidation nor renew its lease
    Auth(flow.browser).logout()
    assert verify(b, rp, grant).json == REVOKED  # B's near cache has lapsed; Redis times out; the database answers
    proxy.resume()
    assert verify(b, rp, grant).json == REVOKED


def test_under_load_no_answer_started_after_the_revocation_returned_is_active(cluster, granted, proxy):
    _, b = cluster
    flow, rp, grant = granted
    proxy.delay(0.5, only=LISTENER_NAME)  # and B's near cache hears of every invalidation 0.5 s late
    cookie = portal_cookie(flow.browser)

    def grant_active() -> bool:
        return verify(b, rp, grant).json["active"]

    def session_alive() -> bool:
        browser = b.test_client()
        browser.set_cookie(PORTAL_COOKIE, cookie)
        return browser.get("/session/status").status_code == 200

    revoke = Auth(flow.browser).logout
    assert_no_active_answer_after(revoke, [grant_active, grant_active, session_alive], seconds=0.3)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # about Redis: one database is enough
@pytest.mark.parametrize("lease", [10.0])  # B renews every 2 s: it has not noticed the hang when A returns
def test_when_redis_hangs_the_revocation_returns_once_no_near_cache_is_trusted(cluster, granted, private_redis):
    """Before near caches, B would have asked the hung Redis, timed out and asked the database: it still does, because
    A, which cannot invalidate, returns only once every lease granted before the hang has run out."""
    _, b = cluster
    flow, rp, grant = granted
    private_redis.signal(signal.SIGSTOP)
    try:
        Auth(flow.browser).logout()
        assert verify(b, rp, grant).json == REVOKED
    finally:
        private_redis.signal(signal.SIGCONT)


def test_after_redis_restarts_the_other_instance_is_still_waited_for(cluster, granted, private_redis, proxy):
    """A Redis without persistence numbers invalidations from zero again: what an instance applied before must not
    count as acknowledging the new numbers (it would be skipped while it still holds "active")."""
    a, b = cluster
    flow, rp, grant = granted
    with a.app_context():
        for number in range(20):  # numbers B has applied, from the Redis about to be replaced
            assert cache().invalidate([Invalidation(f"grant:unrelated-{number}")])
    private_redis.kill()
    private_redis.start()
    served_from_near_cache(b, lambda: verify(b, rp, grant).json["active"] is True)
    proxy.delay(0.3, only=LISTENER_NAME)  # B's near cache stays trusted, and hears of the revocation 0.3 s late
    Auth(flow.browser).logout()
    proxy.resume()
    assert verify(b, rp, grant).json == REVOKED


def test_after_redis_is_emptied_the_other_instance_is_still_waited_for(cluster, granted, private_redis, proxy):
    """FLUSHDB forgets the members (nothing tells them, their connections stay): the first invalidation that finds
    Redis without its numbering waits out a lease, in which every member renews and so empties its copy."""
    a, b = cluster
    flow, rp, grant = granted
    served_from_near_cache(a, lambda: flow.browser.get("/session/status").status_code == 200)
    proxy.delay(0.3, only=LISTENER_NAME)  # B's near cache stays trusted, and hears of everything 0.3 s late
    redis.Redis.from_url(private_redis.url).flushdb()
    Auth(flow.browser).logout()
    proxy.resume()
    assert verify(b, rp, grant).json == REVOKED


def test_an_instance_that_missed_a_message_empties_its_near_cache_at_its_next_renewal(cluster, granted):
    _, b = cluster
    with b.app_context():
        near: NearCache = cache()._near  # type: ignore[attr-defined]
        key = next(iter(near._entries))
        sequence = redis.Redis.from_url(b.config["REDIS_URL"])
        sequence.incr(b.config["CACHE_KEY_PREFIX"] + "near:seq")  # an invalidation whose message never came
    deadline = time.monotonic() + ACTIVE_WITHIN_SECONDS
    while near.get(key) is not None:
        assert time.monotonic() < deadline, "the renewal did not empty the near cache"
        time.sleep(0.02)


def test_a_read_never_keeps_what_an_invalidation_dropped_while_it_was_reading(cluster, granted):
    _, b = cluster
    with b.app_context():
        near: NearCache = cache()._near  # type: ignore[attr-defined]
    started = near.generation  # a read begins ...
    near.drop(["grant:x"])  # ... an invalidation is applied ...
    near.keep("grant:x", b"stale", 60, started)  # ... and the read's answer arrives
    assert near.get("grant:x") is None
