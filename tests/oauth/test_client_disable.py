"""`flask clients disable` ends everything the client holds at once (issue 9 #10): its grants and refresh tokens are
revoked in the same transaction, back-channel logouts are queued, its access tokens stop working at userinfo and
introspection, the grant check's cached answer says revoked, and the Apps page stops listing it."""

import json

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.oauth import tokens, verify_cache
from app.oauth.models import LogoutDelivery, OAuthGrant, RefreshToken
from tests.oauth.conftest import Flow


@pytest.fixture(params=["in-process cache", "redis"])
def app(request, make_app):
    if request.param == "redis":
        return make_app(REDIS_URL=request.getfixturevalue("redis_url"))
    return make_app()


@pytest.fixture
def signed_in(app, owner, make_client):
    rp = make_client(backchannel_logout_uri="https://app.test/backchannel")  # third-party: consent, then code
    flow = Flow(app, rp).sign_in()
    issued = flow.tokens()
    verify = app.test_client().post("/internal/grants/verify", json={"grant": issued["grant_token"]},
                                    auth=(rp.client_id, rp.secret))  # fmt: skip
    assert verify.json["active"] is True  # the answer is now cached
    return flow, issued


def disable(app, client_id: str) -> dict:
    result = app.test_cli_runner().invoke(args=["clients", "disable", client_id])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_disable_revokes_grants_and_refresh_tokens_and_queues_logouts(app, signed_in):
    flow, issued = signed_in
    shown = disable(app, flow.rp.client_id)
    assert shown["disabled"] is True and shown["revoked_grants"] == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(OAuthGrant.revoked_at.is_(None))) == 0
        assert db.session.scalar(select(func.count()).where(RefreshToken.revoked_at.is_(None))) == 0
        assert db.session.scalar(select(func.count()).select_from(LogoutDelivery)) == 1
        cached = verify_cache.get(tokens.digest(issued["grant_token"]))
        assert cached is not None and cached["active"] is False and cached["reason"] == "revoked"


def test_a_disabled_clients_tokens_are_refused_at_once(app, signed_in):
    flow, issued = signed_in
    disable(app, flow.rp.client_id)
    userinfo = app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert userinfo.status_code == 401 and userinfo.json["error"] == "invalid_token"
    assert (
        app.test_client().post("/oauth/introspect", data=flow.rp.auth() | {"token": issued["access_token"]}).status_code
        == 401
    )
    assert flow.refresh(issued["refresh_token"]).json["error"] == "invalid_client"
    verify = app.test_client().post("/internal/grants/verify", json={"grant": issued["grant_token"]},
                                    auth=(flow.rp.client_id, flow.rp.secret))  # fmt: skip
    assert verify.status_code == 401


def test_the_apps_page_stops_listing_a_disabled_client(app, signed_in):
    flow, _ = signed_in
    assert "Example App" in flow.browser.get("/account/apps").text
    disable(app, flow.rp.client_id)
    assert "Example App" not in flow.browser.get("/account/apps").text


def test_disabling_twice_is_harmless(app, signed_in):
    flow, _ = signed_in
    disable(app, flow.rp.client_id)
    assert disable(app, flow.rp.client_id)["revoked_grants"] == 0
