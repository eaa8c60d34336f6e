"""The kit's back-channel logout receiver (Back-Channel Logout 1.0 §2.6-2.8), fed tokens signed with the live
portal's keys: only a valid, fresh logout token for us ends the local session of its sid, and only once."""

import base64
import json
import secrets
from datetime import timedelta

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.oauth import backchannel, keys
from app.oauth.models import LogoutDelivery, OAuthGrant
from app.relying_party.stores import RedisStore
from tests.relying_party.conftest import (
    SIGNED_IN,
    SIGNED_OUT,
    TIMEOUT,
    demo_session,
    demo_sign_in,
    home,
    kit_of,
    portal_sign_in,
    portal_sign_out,
)  # fmt: skip

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def signed_in(browser, demo) -> dict:
    """The browser signed in to the demo app; its cookie session (sid, sub...)."""
    assert SIGNED_IN in demo_sign_in(browser, demo).text
    return demo_session(browser, demo)["gatehouse_user"]


@pytest.fixture
def mint(portal, clock, demo, signed_in):
    """A logout token for the signed-in session, signed by the portal; claims overridden, dropped, or re-typed."""
    client_id = demo.app.extensions["gatehouse_rp"].client_id

    def make(typ="logout+jwt", drop=(), key=None, **overrides) -> str:
        issued = int(clock.now().timestamp())
        claims = {"iss": portal.url, "aud": client_id, "iat": issued, "exp": issued + 120,
                  "jti": secrets.token_urlsafe(16), "sid": signed_in["sid"], "sub": signed_in["sub"],
                  "events": {EVENT: {}}} | overrides  # fmt: skip
        for name in drop:
            claims.pop(name)
        with portal.app.app_context():
            if key is None:
                return keys.sign(claims, typ, clock.now())
            kid = keys.jwks(clock.now())["keys"][0]["kid"]
        return jwt.encode({"alg": "RS256", "kid": kid, "typ": typ}, claims, key)

    return make


def post_logout(demo, token: str, **kwargs) -> requests.Response:
    return requests.post(f"{demo.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=TIMEOUT,
                         **kwargs)  # fmt: skip


def assert_refused(answer: requests.Response) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_valid_logout_token_ends_that_session_at_its_next_request(browser, demo, portal, mint):
    with requests.Session() as other:  # another browser of the same user: another grant, another sid
        portal_sign_in(other, portal.url)
        assert SIGNED_IN in demo_sign_in(other, demo).text
        answer = post_logout(demo, mint())
        assert answer.status_code == 200 and answer.text == ""
        assert answer.headers["Cache-Control"] == "no-store"
        page = home(browser, demo)
        assert SIGNED_OUT in page and "You were signed out of Gatehouse." in page
        assert SIGNED_IN in home(other, demo)
    assert "gatehouse_user" not in demo_session(browser, demo)


@pytest.mark.parametrize(
    ("change", "options"),
    [
        ("a nonce", {"nonce": "n-1"}),
        ("a wrong aud", {"aud": "another-client"}),
        ("a wrong iss", {"iss": "http://127.0.0.1:1"}),
        ("no events", {"drop": ("events",)}),
        ("another event", {"events": {"http://schemas.openid.net/event/other": {}}}),
        ("no jti", {"drop": ("jti",)}),
        ("no sid", {"drop": ("sid",)}),
        ("typ JWT (an ID token's)", {"typ": "JWT"}),
        ("typ at+jwt (an access token's)", {"typ": "at+jwt"}),
    ],
)
def test_a_bad_logout_token_is_refused_and_the_session_stays(browser, demo, mint, change, options):
    assert_refused(post_logout(demo, mint(**options)))
    assert SIGNED_IN in home(browser, demo), change


def test_an_expired_logout_token_is_refused(browser, demo, mint, clock):
    issued = int((clock.now() - timedelta(minutes=10)).timestamp())
    assert_refused(post_logout(demo, mint(iat=issued, exp=issued + 120)))
    assert SIGNED_IN in home(browser, demo)


def test_a_logout_token_issued_in_the_future_is_refused(browser, demo, mint, clock):
    issued = int((clock.now() + timedelta(minutes=5)).timestamp())
    assert_refused(post_logout(demo, mint(iat=issued, exp=issued + 120)))
    assert SIGNED_IN in home(browser, demo)


def test_a_token_signed_with_another_key_under_the_portals_kid_is_refused(browser, demo, mint):
    assert_refused(post_logout(demo, mint(key=RSAKey.generate_key(2048))))
    assert SIGNED_IN in home(browser, demo)


def test_the_id_token_itself_is_refused(browser, demo, signed_in):
    """The very ID token the app received (typ JWT, a nonce, no events): never a logout token."""
    assert_refused(post_logout(demo, signed_in["id_token"]))
    assert SIGNED_IN in home(browser, demo)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_garbage_and_unsigned_tokens_are_refused(browser, demo, signed_in, token):
    assert_refused(post_logout(demo, token))
    assert SIGNED_IN in home(browser, demo)


def test_the_token_must_come_form_encoded(browser, demo, mint):
    answer = requests.post(f"{demo.url}/auth/backchannel-logout", json={"logout_token": mint()}, timeout=TIMEOUT)
    assert_refused(answer)
    assert SIGNED_IN in home(browser, demo)


def test_a_replayed_jti_is_refused(browser, demo, mint):
    token = mint(sid="a-session-of-someone-else")  # accepted once, without touching this browser's session
    assert post_logout(demo, token).status_code == 200
    assert_refused(post_logout(demo, token))
    assert_refused(post_logout(demo, mint(sid="yet-another", jti=_jti_of(token))))
    assert SIGNED_IN in home(browser, demo)


def _jti_of(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def test_the_portals_worker_delivers_the_logout_and_it_is_seen_at_the_next_request(browser, demo, portal, clock,
                                                                                   signed_in):  # fmt: skip
    """Issue 5, scenario 2 with the back channel: sign out at the portal, one worker pass, and the app's very
    next request is signed out; the kit's clock never moved (its verify answer is still cached)."""
    assert SIGNED_IN in home(browser, demo)  # the verify answer is now cached for 60 s
    portal_sign_out(browser, portal.url)
    with portal.app.app_context():
        assert backchannel.deliver_due(clock.now()) == 1
        grant = OAuthGrant.by_public_id(signed_in["sid"])
        delivery = LogoutDelivery.query.filter_by(sid=grant.public_id).one()
        assert delivery.delivered_at is not None and delivery.last_status == 200
    assert SIGNED_OUT in home(browser, demo)


def test_when_the_shared_store_is_down_the_portal_is_asked_to_retry(browser, demo, mint, monkeypatch):
    monkeypatch.setattr(kit_of(demo), "store", RedisStore("redis://127.0.0.1:9/0", timeout=0.1))
    answer = post_logout(demo, mint())
    assert answer.status_code == 503 and answer.headers["Cache-Control"] == "no-store"
    assert SIGNED_IN in home(browser, demo)  # the grant check alone decides meanwhile
