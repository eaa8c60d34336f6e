"""Grant verify and device check: every answer, client auth, bad bodies, no cross-client oracle (#34-#38)."""

import base64
import io
import json
import signal

import pytest

from tests.conftest import Auth
from tests.oauth.conftest import Flow

VERIFY, CHECK = "/internal/grants/verify", "/internal/devices/check"
DEVICE = "demo-device-0123456789"


def basic(client) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client.client_id}:{client.secret}".encode()).decode()}


def verify(app, client, grant):
    return app.test_client().post(VERIFY, json={"grant": grant}, headers=basic(client))


def check(app, client, device_id=DEVICE):
    return app.test_client().post(CHECK, json={"device_id": device_id}, headers=basic(client))


def test_active_grant(app, flow, clock):
    tokens = flow.tokens(device_id=DEVICE)
    response = verify(app, flow.rp, tokens["grant_token"])
    assert response.headers["Cache-Control"] == "private, max-age=60"
    body = response.json
    assert body["active"] is True and body["client_id"] == flow.rp.client_id and body["device_id"] == DEVICE
    assert set(body) == {"active", "sub", "client_id", "device_id", "expires_at"}
    assert body["expires_at"].startswith("2026-01-05T21:00")  # the portal session's absolute expiry


def test_revoked_grant_is_seen_at_once_even_after_a_cached_answer(app, flow):
    tokens = flow.tokens()
    assert verify(app, flow.rp, tokens["grant_token"]).json["active"] is True  # now cached
    Auth(flow.browser).logout()
    assert verify(app, flow.rp, tokens["grant_token"]).json == {"active": False, "reason": "revoked"}


def test_expired_grant(app, flow, clock):
    tokens = flow.tokens()
    clock.advance(minutes=31)  # the portal session idles out; nobody has noticed yet
    assert verify(app, flow.rp, tokens["grant_token"]).json == {"active": False, "reason": "expired"}
    assert verify(app, flow.rp, tokens["grant_token"]).json == {"active": False, "reason": "revoked"}


@pytest.mark.parametrize("grant", ["ghg_" + "A" * 43, "garbage", "", "ghg_short"])
def test_unknown_grants(app, flow, grant):
    assert verify(app, flow.rp, grant).json == {"active": False, "reason": "unknown"}


def test_another_clients_grant_looks_exactly_unknown(app, flow, make_client):
    tokens = flow.tokens()
    other = make_client(first_party=True)
    theirs = verify(app, other, tokens["grant_token"])
    random = verify(app, other, "ghg_" + "B" * 43)

    def shape(response):
        headers = {k: v for k, v in response.headers.items() if not k.startswith("X-RateLimit")}
        return response.status_code, response.json, headers

    assert shape(theirs) == shape(random)
    Auth(flow.browser).logout()  # a revoked (tombstoned) grant of A is still "unknown" to B
    assert verify(app, other, tokens["grant_token"]).json == {"active": False, "reason": "unknown"}


def test_verify_answers_from_the_cache(app, flow):
    from tests.helpers import count_statements

    tokens = flow.tokens()
    verify(app, flow.rp, tokens["grant_token"])
    with count_statements(app, "") as statements:
        for _ in range(10):
            assert verify(app, flow.rp, tokens["grant_token"]).json["active"] is True
    assert statements["n"] == 0  # the hottest path: client identity and answer both come from the cache


def test_a_revoked_answer_read_from_the_database_is_cached_too(app, flow):
    """Another process (or an aged-out tombstone) finds the revocation in the database once, then in the cache."""
    from app.cache import Invalidation, cache
    from app.oauth import tokens as token_material
    from app.oauth import verify_cache
    from tests.helpers import count_statements

    grant = flow.tokens()["grant_token"]
    Auth(flow.browser).logout()
    with app.app_context():
        # As if the tombstone never reached us.
        cache().invalidate([Invalidation(verify_cache.key(token_material.digest(grant)))])
    with count_statements(app, "SELECT") as first:
        assert verify(app, flow.rp, grant).json == {"active": False, "reason": "revoked"}
    with count_statements(app, "") as again:
        assert verify(app, flow.rp, grant).json == {"active": False, "reason": "revoked"}
    assert first["n"] > 0 and again["n"] == 0


def test_a_disabled_client_is_refused_at_once_despite_the_cache(app, flow):
    tokens = flow.tokens()
    assert verify(app, flow.rp, tokens["grant_token"]).status_code == 200  # identity now cached
    assert app.test_cli_runner().invoke(args=["clients", "disable", flow.rp.client_id]).exit_code == 0
    assert verify(app, flow.rp, tokens["grant_token"]).status_code == 401


@pytest.mark.parametrize("path", [VERIFY, CHECK])
def test_bad_credentials_are_401_json(app, flow, path, make_client):
    no_auth = app.test_client().post(path, json={})
    wrong = app.test_client().post(path, json={}, headers={"Authorization": "Basic " + base64.b64encode(
        f"{flow.rp.client_id}:ghs_wrong".encode()).decode()})  # fmt: skip
    public = make_client(public=True)
    public_call = app.test_client().post(path, json={}, headers={
        "Authorization": "Basic " + base64.b64encode(f"{public.client_id}:".encode()).decode()})  # fmt: skip
    for response in (no_auth, wrong, public_call):
        assert response.status_code == 401 and response.json["error"] == "invalid_client"


@pytest.mark.parametrize("path", [VERIFY, CHECK])
def test_bad_bodies(app, flow, path):
    headers = basic(flow.rp)
    assert app.test_client().post(path, data="grant=x", headers=headers).status_code == 415
    malformed = app.test_client().post(path, data="{nope", headers=headers, content_type="application/json")
    assert malformed.status_code == 400 and malformed.json["error"] == "invalid_request"
    array = app.test_client().post(path, json=["x"], headers=headers)
    assert array.status_code == 400


@pytest.mark.parametrize("device_id", ["x" * 129, "has space", "tab\there", "", 42, None])
def test_bad_device_ids_are_400(app, flow, device_id):
    response = check(app, flow.rp, device_id)
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_oversized_grant_is_400(app, flow):
    assert verify(app, flow.rp, "ghg_" + "x" * 500).status_code == 400


def test_device_check_answers(app, owner, rp, make_client):
    flow = Flow(app, rp).sign_in()
    assert check(app, rp).json == {"reauthorize": False}  # no grant yet
    flow.tokens(device_id=DEVICE)
    assert check(app, rp).json == {"reauthorize": False}  # a live grant
    Auth(flow.browser).logout()
    assert check(app, rp).json == {"reauthorize": False}  # revoked, not signed in since
    Auth(app.test_client()).login()
    assert check(app, rp).json == {"reauthorize": True}  # signed in again (on any browser)
    other = make_client(first_party=True)
    assert check(app, other).json == {"reauthorize": False}  # another client's device: no oracle
    assert check(app, rp, "unknown-device").json == {"reauthorize": False}


def test_internal_endpoints_are_rate_limited(make_app, owner, make_client):
    app = make_app(INTERNAL_RATE_LIMIT="2 per minute")
    client = make_client(first_party=True)
    statuses = [check(app, client).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = check(app, client)
    assert int(limited.headers["Retry-After"]) > 0 and limited.json["error"] == "rate_limited"


def test_rate_limit_falls_back_to_this_process_when_its_storage_fails(make_app, owner, make_client):
    app = make_app(INTERNAL_RATE_LIMIT="2 per minute", REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    client = make_client(first_party=True)
    assert [check(app, client).status_code for _ in range(3)] == [200, 200, 429]  # limited, not unlimited


@pytest.mark.parametrize("path", [VERIFY, CHECK])
def test_body_framing(app, flow, path):
    """A JSON object of at most 4 KiB, with a Content-Length; a charset parameter is fine."""
    headers = basic(flow.rp)
    post = app.test_client().post
    with_charset = post(path, data=json.dumps({"grant": "x", "device_id": "d"}), headers=headers,
                        content_type="application/json; charset=utf-8")  # fmt: skip
    assert with_charset.status_code == 200
    assert post(path, data="{}", headers=headers, content_type="application/vnd.api+json").status_code == 415
    oversized = post(path, json={"grant": "x" * 5000}, headers=headers)
    assert oversized.status_code == 413 and oversized.json["error"] == "request_too_large"
    chunked = headers | {"Transfer-Encoding": "chunked"}
    unframed = post(
        path, input_stream=io.BytesIO(b"2\r\n{}\r\n0\r\n\r\n"), headers=chunked, content_type="application/json"
    )
    assert unframed.status_code == 411 and unframed.json["error"] == "length_required"
    not_utf8 = post(path, data=b'{"grant": "\xff"}', headers=headers, content_type="application/json")
    assert not_utf8.status_code == 400 and not_utf8.json["error"] == "invalid_request"


def test_the_client_api_is_cookie_free(app, flow):
    """No portal session is loaded, no cookie set, and the answer does not vary by cookie."""
    tokens = flow.tokens()
    response = flow.browser.post(VERIFY, json={"grant": tokens["grant_token"]}, headers=basic(flow.rp))
    assert response.status_code == 200 and response.json["active"] is True
    assert "Set-Cookie" not in response.headers
    assert "cookie" not in response.headers.get("Vary", "").lower()


def test_a_revocation_made_while_redis_hangs_is_seen_by_the_next_grant_check(make_app, private_redis, owner, rp):
    """Catalogue #59: the "active" answer cached in Redis is never served after a revocation it did not hear of."""
    app = make_app(REDIS_URL=private_redis.url, REDIS_RETRY_AFTER_SECONDS=0)
    flow = Flow(app, rp).sign_in()
    grant = flow.tokens()["grant_token"]
    assert verify(app, rp, grant).json["active"] is True  # now cached in Redis
    private_redis.signal(signal.SIGSTOP)
    Auth(flow.browser).logout()  # the tombstone cannot reach Redis
    private_redis.signal(signal.SIGCONT)
    assert verify(app, rp, grant).json == {"active": False, "reason": "revoked"}


def test_grant_checks_answer_from_the_database_and_stay_limited_when_redis_dies(make_app, private_redis, owner, rp):
    app = make_app(REDIS_URL=private_redis.url, REDIS_RETRY_AFTER_SECONDS=0, INTERNAL_RATE_LIMIT="4 per minute")
    flow = Flow(app, rp).sign_in()
    grant = flow.tokens()["grant_token"]
    warm = verify(app, rp, grant)
    private_redis.kill()
    statuses = [verify(app, rp, grant) for _ in range(5)]
    assert [answer.json for answer in statuses[:4]] == [warm.json] * 4  # the same answer, from the database
    assert statuses[4].status_code == 429  # this process's windows count when Redis cannot: never unlimited
    private_redis.start()
    Auth(flow.browser).logout()
    assert verify(app, rp, grant).json == {"active": False, "reason": "revoked"}
