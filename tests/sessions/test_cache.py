"""The registry cache: in-process and Redis, shared across instances, and never trusted when Redis fails."""

import os
import signal

import pytest

from app.cache import TOMBSTONE_PREFIX, InProcessCache, Invalidation, RedisCache
from tests.conftest import Auth, need, random_suffix
from tests.helpers import PORTAL_COOKIE, portal_cookie
from tests.test_support import failed_logins

pytestmark = pytest.mark.redis


@pytest.fixture(params=["in_process", "redis"])
def cache(request):
    if request.param == "in_process":
        return InProcessCache()
    url = os.environ.get("REDIS_URL")
    need(bool(url), "REDIS_URL is not set: Redis tests skipped")
    return RedisCache(url, prefix=f"gh-test-{random_suffix()}:")


def test_cache_contract(cache):
    assert cache.get("a") is None
    assert cache.invalidate([Invalidation("a", b"1", 60)])
    assert cache.get("a") == b"1"
    cache.add("a", b"2", 60)  # add never overwrites (a reader must not replace a tombstone)
    assert cache.get("a") == b"1"
    assert cache.invalidate([Invalidation("a")])  # marked stale: a miss ...
    assert cache.get("a") is None
    cache.add("a", b"3", 60)  # ... that a reader which read before the change cannot fill
    assert cache.get("a") is None
    tombstone = TOMBSTONE_PREFIX + b"ended"
    assert cache.invalidate([Invalidation("b", tombstone, 60), Invalidation("b")])
    assert cache.get("b") == tombstone  # a stale marker, however late, never replaces a tombstone


def shared_redis_apps(make_app, redis_url, count=2):
    prefix = f"gh-test-{random_suffix()}:"
    return [
        make_app(REDIS_URL=redis_url, CACHE_KEY_PREFIX=prefix, RATELIMIT_KEY_PREFIX=prefix + "rl") for _ in range(count)
    ]


def test_revocation_on_one_instance_is_seen_by_the_other_within_one_request(make_app, redis_url, owner):
    first, second = shared_redis_apps(make_app, redis_url)
    browser = first.test_client()
    Auth(browser).login()
    cookie = portal_cookie(browser)
    elsewhere = second.test_client()
    elsewhere.set_cookie(PORTAL_COOKIE, cookie)
    assert elsewhere.get("/").status_code == 200  # warms the shared cache
    Auth(browser).logout()
    refused = elsewhere.get("/")
    assert refused.status_code == 302
    assert refused.headers["Location"].startswith("/login?reason=session_expired")


def test_rate_limit_is_shared_through_redis(make_app, redis_url):
    first, second = shared_redis_apps(make_app, redis_url)
    # Redis outlives the test: a fresh address and e-mail keep earlier runs' counters out.
    address, email = f"10.9.{os.getpid() % 250}.{int(random_suffix(), 16) % 250}", f"x-{random_suffix()}@example.test"
    clients = [first.test_client(), second.test_client()]
    for client in clients:
        client.environ_base["REMOTE_ADDR"] = address
    assert failed_logins(clients[0], email, 5) == [400] * 5
    assert failed_logins(clients[1], email, 1) == [429]


def test_requests_authenticate_through_the_database_when_redis_dies(make_app, private_redis, owner):
    app = make_app(REDIS_URL=private_redis.url, REDIS_RETRY_AFTER_SECONDS=0)
    client = app.test_client()
    Auth(client).login()
    assert client.get("/").status_code == 200
    private_redis.kill()
    assert client.get("/").status_code == 200  # the database answers instead
    stolen = portal_cookie(client)
    Auth(client).logout()
    replay = app.test_client()
    replay.set_cookie(PORTAL_COOKIE, stolen)
    assert replay.get("/").status_code == 302  # never "valid" for want of a cache
    private_redis.start()
    Auth(client).login()
    assert client.get("/").status_code == 200  # recovered without a restart


def test_a_revocation_made_while_redis_hangs_is_not_undone_when_it_returns(make_app, private_redis, owner):
    app = make_app(REDIS_URL=private_redis.url, REDIS_RETRY_AFTER_SECONDS=0)
    victim, thief = app.test_client(), app.test_client()
    Auth(victim).login()
    assert victim.get("/").status_code == 200  # an "alive" entry now sits in Redis
    thief.set_cookie(PORTAL_COOKIE, portal_cookie(victim))
    private_redis.signal(signal.SIGSTOP)
    Auth(victim).logout()  # the tombstone cannot reach Redis
    private_redis.signal(signal.SIGCONT)
    assert thief.get("/").status_code == 302


def test_in_process_entries_live_briefly_so_other_workers_catch_up():
    now = [100.0]
    local = InProcessCache(max_ttl_seconds=2, timer=lambda: now[0])
    local.add("s", b"alive", 60)  # asked for 60 s, kept for 2 s: another process cannot invalidate it
    now[0] += 1.9
    assert local.get("s") == b"alive"
    now[0] += 0.2
    assert local.get("s") is None
