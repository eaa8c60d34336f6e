"""The kit and step-up (DESIGN §9, issue 11 item 7): the acr and amr of the validated ID token on the signed-in user,
@login_required(acr=…mfa) asking the portal for the second step and coming back, a clear page instead of a loop when
the user has no second factor, and silent re-authorization answered interaction_required staying quiet."""

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from app.accounts.models import User
from app.factors.totp import Enrolment
from app.oauth import backchannel
from app.relying_party import ACR_MFA, ACR_PASSWORD, ACR_VALUES, Gatehouse, digest, login_required
from tests import factories
from tests.conftest import csrf_token_from
from tests.factors.conftest import app_code, enrolled
from tests.relying_party.conftest import (
    SIGNED_OUT,
    TIMEOUT,
    demo_session,
    demo_sign_in,
    home,
    portal_sign_in,
    portal_sign_out,
)  # fmt: skip
from tests.relying_party.test_kit import query_of, start_sign_in

NEEDS_TWO_STEP = "This page needs two-step verification."


@pytest.fixture
def enrol(portal, clock):
    """Set up an authenticator app for the owner (in the portal's database), as the two-step page would."""

    def enrol_now() -> Enrolment:
        with portal.app.app_context():
            return enrolled(User.by_email(factories.OWNER_EMAIL), clock.now())

    return enrol_now


def authorize_requests(page: requests.Response) -> list[dict[str, str]]:
    """The queries of every portal authorization request the browser went through on its way to this page."""
    return [query_of(step.url) for step in [*page.history, page] if urlsplit(step.url).path == "/oauth/authorize"]


def kit_sign_ins(page: requests.Response) -> int:
    return sum(urlsplit(step.url).path == "/auth/login" for step in [*page.history, page])


def try_again_link(page: str) -> str:
    found = re.search(r'href="([^"]+)">Try again</a>', page)
    assert found, page
    return html.unescape(found[1])


def confirm_second_step(browser: requests.Session, page: requests.Response, enrolment, clock) -> requests.Response:
    """The portal's "Confirm it is you" form, filled as a browser would: password and the app's current code."""
    assert page.status_code == 200 and "/account/reauthenticate" in page.url, page.url
    form = {"csrf_token": csrf_token_from(page.text), "password": factories.PASSWORD,
            "code": app_code(enrolment, clock.now()),
            "next": parse_qs(urlsplit(page.url).query)["next"][0]}  # fmt: skip
    return browser.post(page.url.split("?")[0], data=form, timeout=TIMEOUT)


def test_the_kit_knows_the_portals_acr_values(portal):
    discovery = requests.get(f"{portal.url}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    assert set(ACR_VALUES) == set(discovery["acr_values_supported"])


def test_the_signed_in_user_carries_the_id_tokens_acr_and_amr(browser, demo):
    demo_sign_in(browser, demo)
    stored = demo_session(browser, demo)["gatehouse_user"]
    assert stored["acr"] == ACR_PASSWORD and stored["amr"] == ["pwd"]
    page = browser.get(f"{demo.url}/account", timeout=TIMEOUT)
    assert ACR_PASSWORD in page.text and "pwd" in page.text


def test_sign_in_asks_the_acr_a_page_needs_and_remembers_it(browser, demo):
    params = query_of(start_sign_in(browser, demo, acr=ACR_MFA, next="/billing"))
    assert params["acr_values"] == ACR_MFA and "prompt" not in params  # the user must be able to answer
    assert demo_session(browser, demo)["gatehouse_pending"][params["state"]]["acr"] == ACR_MFA
    assert "acr_values" not in query_of(start_sign_in(browser, demo, acr="urn:evil:acr"))  # only the portal's


def test_step_up_asks_the_second_step_then_comes_back_with_acr_mfa(browser, demo, enrol, clock):
    demo_sign_in(browser, demo)  # a password-only sign-in: acr pwd
    enrolment = enrol()
    page = browser.get(f"{demo.url}/billing", timeout=TIMEOUT)
    assert [a.get("acr_values") for a in authorize_requests(page)] == [ACR_MFA]
    assert all("prompt" not in a for a in authorize_requests(page))
    back = confirm_second_step(browser, page, enrolment, clock)
    assert back.status_code == 200 and back.url == f"{demo.url}/billing", back.url
    assert "Billing" in back.text and ACR_MFA in back.text and "pwd otp" in back.text
    stored = demo_session(browser, demo)["gatehouse_user"]
    assert stored["acr"] == ACR_MFA and stored["amr"] == ["pwd", "otp"]
    again = browser.get(f"{demo.url}/billing", timeout=TIMEOUT)
    assert again.status_code == 200 and again.history == []  # kept: no second round trip
    assert "Billing" in browser.get(f"{demo.url}/account", timeout=TIMEOUT).text  # and on other pages


def test_plain_login_required_is_unchanged_for_a_one_factor_session(browser, demo, enrol):
    demo_sign_in(browser, demo)
    enrol()
    page = browser.get(f"{demo.url}/account", timeout=TIMEOUT)
    assert page.status_code == 200 and page.history == [] and ACR_PASSWORD in page.text


def test_without_a_second_factor_a_clear_page_instead_of_a_loop(browser, demo, portal):
    demo_sign_in(browser, demo)
    page = browser.get(f"{demo.url}/billing", timeout=TIMEOUT)
    assert page.status_code == 403 and page.url == f"{demo.url}/billing"
    assert kit_sign_ins(page) == 1  # one step-up try, answered acr pwd
    assert NEEDS_TWO_STEP in page.text and "Set it up in your Gatehouse account, then try again." in page.text
    assert f'href="{portal.url}/account/two-step"' in page.text and "· Demo App</title>" in page.text  # its layout
    again = browser.get(f"{demo.url}/billing", timeout=TIMEOUT)
    assert again.status_code == 403 and again.history == [] and NEEDS_TWO_STEP in again.text  # no loop
    assert browser.get(f"{demo.url}/account", timeout=TIMEOUT).status_code == 200  # still signed in
    assert query_of(try_again_link(again.text)) == {"acr": ACR_MFA, "next": "/billing"}
    retried = browser.get(f"{demo.url}{try_again_link(again.text)}", timeout=TIMEOUT)
    assert retried.status_code == 403 and kit_sign_ins(retried) == 1


def test_after_setting_up_two_step_try_again_steps_up(browser, demo, enrol, clock):
    demo_sign_in(browser, demo)
    refused = browser.get(f"{demo.url}/billing", timeout=TIMEOUT)
    assert refused.status_code == 403
    enrolment = enrol()
    page = browser.get(f"{demo.url}{try_again_link(refused.text)}", timeout=TIMEOUT)
    back = confirm_second_step(browser, page, enrolment, clock)
    assert back.status_code == 200 and back.url == f"{demo.url}/billing" and ACR_MFA in back.text


def test_a_signed_out_visitor_is_sent_to_sign_in_with_the_acr(demo):
    answer = requests.get(f"{demo.url}/billing", allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302
    assert query_of(answer.headers["Location"]) == {"next": "/billing", "acr": ACR_MFA}


def test_silent_reauthorization_answered_interaction_required_stays_quiet(browser, demo, portal, clock, kit_clock,
                                                                          enrol):  # fmt: skip
    """The portal signed in again with the password only: prompt=none with acr_values mfa is interaction_required,
    the kit stays signed out without a notice (as for login_required), then asks the second step with the user."""
    demo_sign_in(browser, demo)
    portal_sign_out(browser, portal.url)
    with portal.app.app_context():
        assert backchannel.deliver_due(clock.now()) == 1
    assert SIGNED_OUT in home(browser, demo)
    portal_sign_in(browser, portal.url)
    enrolment = enrol()
    kit_clock.advance(seconds=16)  # past the cached device-check answer
    page = browser.get(f"{demo.url}/billing", timeout=TIMEOUT)
    tries = authorize_requests(page)
    assert [(t.get("prompt"), t.get("acr_values")) for t in tries] == [("none", ACR_MFA), (None, ACR_MFA)]
    assert any("error=interaction_required" in step.headers.get("Location", "") for step in page.history)
    assert "did not work" not in page.text
    back = confirm_second_step(browser, page, enrolment, clock)
    assert back.url == f"{demo.url}/billing" and ACR_MFA in back.text


def test_any_app_gets_the_kits_page_in_its_own_plain_layout(kit_clock):
    """No portal: a session whose step-up was answered with a password only, its grant check cached as active."""
    shop = Flask("shop")
    shop.secret_key = "k" * 32
    kit = Gatehouse(shop, issuer="http://127.0.0.1:9", client_id="c", client_secret="s", clock=kit_clock.now)
    shop.get("/billing")(login_required(acr=ACR_MFA)(lambda: "billing"))
    kit.cache.set(f"verify:{digest('grant')}", True, kit_clock.now() + timedelta(seconds=60), kit_clock.now())
    browser = shop.test_client()
    with browser.session_transaction() as session:
        session["gatehouse_user"] = {"sub": "u", "sid": "s", "grant": "grant", "acr": ACR_PASSWORD, "amr": ["pwd"],
                                     "step_up_refused": ACR_MFA}  # fmt: skip
    page = browser.get("/billing")
    assert page.status_code == 403 and "<title>Two-step verification needed</title>" in page.text
    assert NEEDS_TWO_STEP in page.text and 'href="http://127.0.0.1:9/account/two-step"' in page.text
    with pytest.raises(ValueError, match="acr must be one of"):
        login_required(acr="urn:other:acr")
