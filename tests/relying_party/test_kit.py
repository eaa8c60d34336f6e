"""The kit against the live portal: device cookie, the sign-in redirect, the callback's guards, the grant check
and its 60 s cache on the kit's own clock, failing closed when the portal is away, and sign-out."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.oauth import backchannel
from app.relying_party.portal import PortalUnavailable
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

DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def start_sign_in(browser: requests.Session, demo, **params) -> str:
    answer = browser.get(f"{demo.url}/auth/login", params=params, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302 and answer.headers["Cache-Control"] == "no-store"
    return answer.headers["Location"]


def authorization_response(browser: requests.Session, authorize_url: str) -> str:
    """The browser at the portal's authorization endpoint; where the portal sends it back."""
    answer = browser.get(authorize_url, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code in (302, 303), answer.text[:300]
    return answer.headers["Location"]


def test_the_device_cookie_is_first_party_persistent_and_set_once(demo):
    with requests.Session() as browser:
        first = browser.get(f"{demo.url}/", timeout=TIMEOUT)
        header = first.headers["Set-Cookie"]
        assert "demo_did=" in header and "HttpOnly" in header and "SameSite=Lax" in header
        assert "Max-Age=34560000" in header and "Path=/" in header and "Secure" not in header
        assert DEVICE_ID.match(browser.cookies["demo_did"])
        again = browser.get(f"{demo.url}/account", allow_redirects=False, timeout=TIMEOUT)
        assert "demo_did" not in again.headers.get("Set-Cookie", "")


def test_a_malformed_device_cookie_is_replaced(demo):
    answer = requests.get(f"{demo.url}/", cookies={"demo_did": "not valid!"}, timeout=TIMEOUT)
    assert DEVICE_ID.match(answer.cookies["demo_did"])


def test_sign_in_redirects_with_pkce_state_nonce_and_the_device_id(portal, demo):
    with requests.Session() as browser:
        browser.get(f"{demo.url}/", timeout=TIMEOUT)
        location = start_sign_in(browser, demo, next="/account")
        params = query_of(location)
        assert location.startswith(f"{portal.url}/oauth/authorize?")
        assert params["response_type"] == "code" and params["scope"] == "openid profile email"
        assert params["client_id"] == kit_of(demo).client_id
        assert params["redirect_uri"] == f"{demo.url}/auth/callback"
        assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
        assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43
        assert params["device_id"] == browser.cookies["demo_did"]
        assert "prompt" not in params
        pending = demo_session(browser, demo)["gatehouse_pending"][params["state"]]
        assert pending["next"] == "/account" and pending["silent"] is False
        assert query_of(start_sign_in(browser, demo, silent="1"))["prompt"] == "none"


def test_sign_in_comes_back_to_the_page_asked_for(browser, demo):
    page = browser.get(f"{demo.url}/account", timeout=TIMEOUT)
    assert page.url == f"{demo.url}/account" and "Ada Lovelace" in page.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "account"])
def test_sign_in_never_redirects_off_site(browser, demo, target):
    page = browser.get(f"{demo.url}/auth/login", params={"next": target}, timeout=TIMEOUT)
    assert page.url == f"{demo.url}/" and SIGNED_IN in page.text


def test_the_callback_refuses_an_unknown_state(browser, demo):
    callback = authorization_response(browser, start_sign_in(browser, demo))
    page = browser.get(callback.replace("state=", "state=x"), timeout=TIMEOUT)
    assert SIGNED_OUT in page.text and "expired or was started elsewhere" in page.text


def test_the_callback_refuses_another_issuer(browser, demo):
    """RFC 9207: an authorization response naming another issuer (a mix-up attack) is not redeemed."""
    callback = authorization_response(browser, start_sign_in(browser, demo))
    page = browser.get(callback.replace("iss=", "iss=https%3A%2F%2Fevil.example&was="), timeout=TIMEOUT)
    assert SIGNED_OUT in page.text and "did not work" in page.text


def test_a_callback_is_redeemed_once(browser, demo):
    callback = authorization_response(browser, start_sign_in(browser, demo))
    assert SIGNED_IN in browser.get(callback, timeout=TIMEOUT).text
    browser.post(f"{demo.url}/auth/logout", allow_redirects=False, timeout=TIMEOUT)
    assert SIGNED_OUT in browser.get(callback, timeout=TIMEOUT).text  # its state was used up


def test_a_declined_sign_in_shows_a_notice(demo, portal):
    with requests.Session() as browser:  # not signed in to the portal: prompt=none answers login_required
        browser.get(f"{demo.url}/", timeout=TIMEOUT)
        callback = authorization_response(browser, start_sign_in(browser, demo, silent="1"))
        assert "error=login_required" in callback
        page = browser.get(callback, timeout=TIMEOUT)
        assert SIGNED_OUT in page.text and "did not work" not in page.text  # a failed silent try is quiet


def count_calls(monkeypatch, portal_client, name: str) -> list:
    calls = []
    real = getattr(portal_client, name)

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(portal_client, name, counted)
    return calls


def test_the_grant_check_is_cached_60_seconds_on_the_kits_clock(browser, demo, portal, kit_clock, monkeypatch):
    """Issue 5, scenario 2 without the back channel: the revocation is seen once the cached answer expires."""
    calls = count_calls(monkeypatch, kit_of(demo).portal, "verify_grant")
    demo_sign_in(browser, demo)  # its home page asked once
    kit_clock.advance(seconds=1)
    assert SIGNED_IN in home(browser, demo) and len(calls) == 1
    portal_sign_out(browser, portal.url)  # its back-channel logout is never delivered here
    kit_clock.advance(seconds=58)  # 59 s after the answer
    assert SIGNED_IN in home(browser, demo) and len(calls) == 1
    kit_clock.advance(seconds=2)
    page = home(browser, demo)
    assert SIGNED_OUT in page and "You were signed out of Gatehouse." in page and len(calls) == 2


def test_a_shorter_max_age_is_respected(browser, demo, kit_clock, monkeypatch):
    kit = kit_of(demo)
    real = kit.portal.verify_grant
    monkeypatch.setattr(kit.portal, "verify_grant", lambda token: (real(token)[0], 10))
    calls = count_calls(monkeypatch, kit.portal, "verify_grant")
    demo_sign_in(browser, demo)
    kit_clock.advance(seconds=9)
    home(browser, demo)
    assert len(calls) == 1
    kit_clock.advance(seconds=1)
    assert SIGNED_IN in home(browser, demo) and len(calls) == 2


def test_the_portal_away_fails_closed_after_the_cache_and_recovers(browser, demo, kit_clock, monkeypatch):
    kit = kit_of(demo)
    demo_sign_in(browser, demo)
    real = kit.portal.verify_grant

    def down(_token):
        raise PortalUnavailable("connection refused")

    monkeypatch.setattr(kit.portal, "verify_grant", down)
    assert SIGNED_IN in home(browser, demo)  # the cached answer still stands
    kit_clock.advance(seconds=61)
    page = home(browser, demo)
    assert SIGNED_OUT in page and "cannot be reached" in page
    assert browser.get(f"{demo.url}/account", timeout=TIMEOUT).status_code == 503
    assert "gatehouse_user" in demo_session(browser, demo)  # kept: nothing said the grant ended
    monkeypatch.setattr(kit.portal, "verify_grant", real)
    kit_clock.advance(seconds=6)  # past the short back-off after a failure
    assert SIGNED_IN in home(browser, demo)


def test_sign_out_ends_the_local_session_and_the_portal_session(browser, demo, portal):
    demo_sign_in(browser, demo)
    id_token = demo_session(browser, demo)["gatehouse_user"]["id_token"]
    answer = browser.post(f"{demo.url}/auth/logout", headers={"Origin": demo.url}, allow_redirects=False,
                          timeout=TIMEOUT)  # fmt: skip
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith(f"{portal.url}/oauth/logout?")
    assert query_of(location)["id_token_hint"] == id_token
    assert query_of(location)["post_logout_redirect_uri"] == f"{demo.url}/"
    page = browser.get(location, timeout=TIMEOUT)
    assert page.url.startswith(f"{demo.url}/") and SIGNED_OUT in page.text
    assert "/login" in browser.get(f"{portal.url}/", timeout=TIMEOUT).url  # signed out there too


def test_a_cross_site_sign_out_is_refused(browser, demo):
    demo_sign_in(browser, demo)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        answer = browser.post(f"{demo.url}/auth/logout", headers=headers, allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 403
    assert SIGNED_IN in home(browser, demo)


def silent_tries(page: requests.Response) -> int:
    return sum("/auth/login?silent=1" in step.url for step in [*page.history, page])


@pytest.fixture
def revoked(browser, demo, portal, clock) -> None:
    """Signed in to the demo app, then signed out at the portal; the logout delivered; the app shows it."""
    demo_sign_in(browser, demo)
    portal_sign_out(browser, portal.url)
    with portal.app.app_context():
        assert backchannel.deliver_due(clock.now()) == 1
    assert SIGNED_OUT in home(browser, demo)


def test_signing_in_to_the_portal_again_signs_the_app_back_in_silently(browser, demo, portal, kit_clock, revoked):
    portal_sign_in(browser, portal.url)
    assert SIGNED_OUT in home(browser, demo)  # the device check answered "no" a moment ago (cached 15 s)
    kit_clock.advance(seconds=16)
    page = browser.get(f"{demo.url}/account", timeout=TIMEOUT)
    assert page.url == f"{demo.url}/account" and "Ada Lovelace" in page.text and silent_tries(page) == 1
    assert any("prompt=none" in step.headers.get("Location", "") for step in page.history)


def test_a_failed_silent_sign_in_waits_five_minutes_or_a_changed_answer(browser, demo, portal, kit_clock, revoked):
    with requests.Session() as other:  # the user signs in to the portal on another browser only
        portal_sign_in(other, portal.url)
        kit_clock.advance(seconds=16)
        page = browser.get(f"{demo.url}/", timeout=TIMEOUT)
        assert SIGNED_OUT in page.text and silent_tries(page) == 1  # prompt=none → login_required
        for _ in range(3):
            kit_clock.advance(seconds=16)
            page = browser.get(f"{demo.url}/", timeout=TIMEOUT)
            assert SIGNED_OUT in page.text and silent_tries(page) == 0
        kit_clock.advance(minutes=5)
        assert silent_tries(browser.get(f"{demo.url}/", timeout=TIMEOUT)) == 1
        portal_sign_out(other, portal.url)  # the device check now says no...
        kit_clock.advance(seconds=16)
        assert silent_tries(browser.get(f"{demo.url}/", timeout=TIMEOUT)) == 0
        portal_sign_in(other, portal.url)  # ...then yes again: a changed answer may try at once
        kit_clock.advance(seconds=16)
        assert silent_tries(browser.get(f"{demo.url}/", timeout=TIMEOUT)) == 1


def test_only_page_loads_are_sent_to_sign_in_silently(browser, demo, portal, kit_clock, revoked):
    portal_sign_in(browser, portal.url)
    kit_clock.advance(seconds=16)
    for headers in ({"Sec-Fetch-Mode": "cors"}, {"Sec-Fetch-Mode": "no-cors"}):
        answer = browser.get(f"{demo.url}/", headers=headers, allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 200 and SIGNED_OUT in answer.text


def test_a_new_device_is_never_checked(demo, monkeypatch):
    calls = count_calls(monkeypatch, kit_of(demo).portal, "check_device")
    assert SIGNED_OUT in requests.get(f"{demo.url}/", timeout=TIMEOUT).text and calls == []
