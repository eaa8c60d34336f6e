"""Introspection (RFC 7662) of an access token once warm (issue 13): the client and the token's grant come from the
cache (in-process, or Redis with its near cache), the signature is checked once per process and the token
endpoints' limit takes the hit an earlier success kept, so it runs no SQL, no COMMIT and no Redis round trip; yet it
reads inactive at once when the grant is revoked, the client disabled, the token expired or the key that signed it
withdrawn."""

import pytest
from sqlalchemy import delete

from app.extensions import db
from app.oauth import endpoints, keys
from app.oauth.models import SigningKey
from tests.conftest import CACHE_KINDS, Auth, app_with_cache
from tests.request_costs import redis_round_trips, sql_statements
from tests.sessions.test_near_cache import served_from_near_cache

INACTIVE = {"active": False}


@pytest.fixture(params=CACHE_KINDS)
def app(request, make_app):
    return app_with_cache(request, make_app)


@pytest.fixture
def warm(app, flow):
    """Tokens whose access token has been introspected until the answer came from the caches alone."""
    tokens = flow.tokens()
    served_from_near_cache(app, lambda: flow.introspect(tokens["access_token"])["active"] is True, allowed=1)
    return tokens


def test_a_warm_introspection_runs_no_sql_and_makes_no_round_trip(app, flow, warm):
    with redis_round_trips() as counted, sql_statements(app) as sql:
        for _ in range(5):
            assert flow.introspect(warm["access_token"])["active"] is True
    assert (sql.statements, sql.commits) == ([], 0)
    assert counted.round_trips == 0


def test_a_revoked_grants_access_token_reads_inactive_at_once(app, flow, warm):
    Auth(flow.browser).logout()
    assert flow.introspect(warm["access_token"]) == INACTIVE


def test_a_disabled_client_is_refused_at_once(app, flow, warm):
    assert app.test_cli_runner().invoke(args=["clients", "disable", flow.rp.client_id]).exit_code == 0
    response = app.test_client().post("/oauth/introspect", data=flow.rp.auth() | {"token": warm["access_token"]})
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_an_access_tokens_signature_is_checked_once_per_process(app, flow, monkeypatch):
    tokens = flow.tokens()
    checked = []
    original = keys.verify
    monkeypatch.setattr(keys, "verify", lambda *args, **kwargs: checked.append(1) or original(*args, **kwargs))
    for _ in range(3):
        assert flow.introspect(tokens["access_token"])["active"] is True
    assert len(checked) == 1


def test_a_token_checked_before_is_refused_once_expired(app, flow, warm, clock):
    clock.advance(seconds=app.config["ACCESS_TOKEN_TTL_SECONDS"] + 1)
    assert flow.introspect(warm["access_token"]) == INACTIVE


def test_a_token_checked_before_is_refused_once_its_key_is_withdrawn(app, flow, warm):
    with app.app_context():
        db.session.execute(delete(SigningKey))  # an operator's emergency removal of a leaked key
        db.session.commit()
        keys.forget_ring()
        assert app.extensions[endpoints.VERIFIED_TOKENS_KEY]  # the token is still among the checked ones
    assert flow.introspect(warm["access_token"]) == INACTIVE


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke", "/oauth/token", "/oauth/userinfo"])
def test_the_back_channel_endpoints_neither_read_nor_write_a_cookie(app, flow, path):
    """Client-authenticated (or bearer) endpoints: a portal cookie sent along is not loaded, none is set, and the
    answer does not vary by cookie (no session work on every introspection)."""
    tokens = flow.tokens()
    form = flow.rp.auth() | {"token": tokens["access_token"], "grant_type": "refresh_token",
                             "refresh_token": tokens["refresh_token"]}  # fmt: skip
    if path == "/oauth/userinfo":
        response = flow.browser.get(path, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    else:
        response = flow.browser.post(path, data={k: v for k, v in form.items() if path == "/oauth/token" or
                                                 k not in ("grant_type", "refresh_token")})  # fmt: skip
    assert response.status_code == 200, response.json
    assert "Set-Cookie" not in response.headers
    assert "cookie" not in response.headers.get("Vary", "").lower()
