"""The kit's HTTP client and stores without a real portal: a stub server answers what each test needs."""

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from flask import Flask, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from app.relying_party.portal import Portal, PortalRefused, PortalUnavailable, max_age
from app.relying_party.stores import MemoryStore, RedisStore, StoreError

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})


class Stub:
    """A fake portal: `answers[path]` is (status, headers, body); every request is recorded."""

    def __init__(self):
        self.answers: dict[str, tuple] = {}
        self.seen: list[dict] = []
        self.delay = 0.0
        app = Flask(__name__)

        @app.route("/<path:path>", methods=["GET", "POST"])
        def any_path(path):
            self.seen.append({"path": "/" + path, "headers": dict(request.headers), "body": request.get_data()})
            time.sleep(self.delay)
            status, headers, body = self.answers.get("/" + path, (404, {}, {"error": "not_found"}))
            return (json.dumps(body) if not isinstance(body, str) else body), status, headers

        self.app = app


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    fake = Stub()
    server = make_server("127.0.0.1", 0, fake.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    fake.answers["/.well-known/openid-configuration"] = (200, {}, {"issuer": url, "jwks_uri": f"{url}/jwks"})
    fake.answers["/jwks"] = (200, {}, {"keys": [KEY.as_dict(private=False)]})
    try:
        yield fake, url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def portal_at(url: str, **options) -> Portal:
    return Portal(url, "client:1", "s3cret+/=", **options)


def test_the_grant_check_sends_basic_auth_and_json_and_reads_max_age(stub):
    fake, url = stub
    fake.answers["/internal/grants/verify"] = (200, {"Cache-Control": "private, max-age=60"}, {"active": True})
    assert portal_at(url).verify_grant("ghg_x") == ({"active": True}, 60)
    seen = fake.seen[-1]
    assert seen["headers"]["Content-Type"] == "application/json" and json.loads(seen["body"]) == {"grant": "ghg_x"}
    credentials = base64.b64decode(seen["headers"]["Authorization"].removeprefix("Basic ")).decode()
    assert credentials == "client%3A1:s3cret%2B%2F%3D"  # RFC 6749 §2.3.1: form-encoded, then joined


@pytest.mark.parametrize(
    ("status", "headers", "body", "retry_after"),
    [
        (429, {"Retry-After": "7"}, {"error": "rate_limited"}, 7),
        (503, {}, {"error": "unavailable"}, None),
        (500, {}, "<html>oops</html>", None),
        (200, {}, "not json", None),
        (200, {}, [1, 2], None),
    ],
)
def test_what_counts_as_unavailable(stub, status, headers, body, retry_after):
    fake, url = stub
    fake.answers["/internal/devices/check"] = (status, headers, body)
    with pytest.raises(PortalUnavailable) as caught:
        portal_at(url).check_device("device-1")
    assert caught.value.retry_after == retry_after


def test_bad_credentials_are_refused_not_unavailable(stub):
    fake, url = stub
    fake.answers["/internal/grants/verify"] = (401, {}, {"error": "invalid_client"})
    with pytest.raises(PortalRefused) as caught:
        portal_at(url).verify_grant("ghg_x")
    assert caught.value.status == 401 and caught.value.body["error"] == "invalid_client"


def test_a_slow_portal_times_out(stub):
    fake, url = stub
    fake.answers["/internal/grants/verify"] = (200, {}, {"active": True})
    fake.delay = 0.5
    with pytest.raises(PortalUnavailable):
        portal_at(url, timeout=0.1).verify_grant("ghg_x")


def test_a_portal_that_is_not_there():
    with pytest.raises(PortalUnavailable):
        portal_at("http://127.0.0.1:9").check_device("device-1")


def test_discovery_must_name_the_issuer_itself(stub):
    fake, url = stub
    fake.answers["/.well-known/openid-configuration"] = (200, {}, {"issuer": "https://elsewhere.example"})
    with pytest.raises(PortalUnavailable, match="issuer"):
        portal_at(url).endpoint("authorization_endpoint")


def test_an_unknown_kid_refetches_the_keys_once_and_not_on_every_forged_kid(stub):
    fake, url = stub
    portal = portal_at(url)
    assert portal.signing_key("k1").kid == "k1"
    assert portal.signing_key("forged") is None
    assert portal.signing_key("forged-again") is None
    assert [s["path"] for s in fake.seen].count("/jwks") == 1  # refetched at most every 10 s


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("private, max-age=60", 60), ("max-age=5", 5), ("no-store", 0), ("no-cache, max-age=60", 0), (None, 0),
     ("max-age=soon", 0)],
)  # fmt: skip
def test_max_age(header, seconds):
    headers = Message()
    if header:
        headers["Cache-Control"] = header
    assert max_age(headers) == seconds


def test_the_memory_store_expires_refuses_duplicates_and_stays_bounded():
    now = datetime(2026, 1, 5, tzinfo=UTC)
    store = MemoryStore(max_entries=3)
    assert store.add("jti:a", True, now + timedelta(seconds=10), now)
    assert not store.add("jti:a", True, now + timedelta(seconds=10), now)
    assert store.get("jti:a", now + timedelta(seconds=10)) is None
    assert store.add("jti:a", True, now + timedelta(seconds=30), now + timedelta(seconds=10))
    for name in "bcd":
        store.set(name, name, now + timedelta(minutes=1), now)
    assert len(store) == 3 and store.get("jti:a", now) is None and store.get("d", now) == "d"
    store.delete("d")
    assert store.get("d", now) is None


@pytest.mark.redis
def test_the_redis_store_is_shared_and_atomic(redis_url):
    now = datetime(2026, 1, 5, tzinfo=UTC)
    prefix = f"gatehouse-rp-test-{time.monotonic_ns()}:"
    first, second = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)  # two workers
    assert first.add("jti:a", True, now + timedelta(seconds=5), now)
    assert not second.add("jti:a", True, now + timedelta(seconds=5), now)
    second.set("sid:s", {"why": "logout"}, now + timedelta(seconds=5), now)
    assert first.get("sid:s", now) == {"why": "logout"}
    first.delete("sid:s")
    assert second.get("sid:s", now) is None


def test_a_redis_store_that_is_down_raises_store_error():
    store = RedisStore("redis://127.0.0.1:9/0")
    with pytest.raises(StoreError):
        store.get("sid:s", datetime(2026, 1, 5, tzinfo=UTC))
