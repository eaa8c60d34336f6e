"""Signing in with two steps and with passkeys in Chromium (issue 11 items 1, 2, 3 and 6): a password then a code from
the authenticator app (computed by this test from the key shown on the set-up page) or a recovery code on /login/verify;
a passkey made by the DevTools virtual authenticator, used alone from /login and as the second step after the password;
the e-mail field's pending autofill request not getting in the button's way; JavaScript off; axe-core; screenshots.
Everything runs on the portal served on localhost, as `make run` serves it: WebAuthn refuses IP addresses."""

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from app.clock import FrozenClock
from tests import factories
from tests.e2e.conftest import DESKTOP, LiveServer, screenshot
from tests.e2e.helpers import is_status_poll, sign_in, visit
from tests.e2e.test_passkeys import virtual_authenticator
from tests.e2e.test_two_step import CODE_FIELD, PHONE, expect_axe_clean, press, setup_key, shown_codes
from tests.relying_party.conftest import app, portal  # noqa: F401 (fixtures: a live portal on localhost)

VERIFY = "/login/verify"
TOTP_STEP_SECONDS = 30
WRONG_CODE = "That code is not right. Check your authenticator app (or recovery code) and try again."
NEEDS_JAVASCRIPT = "Passkeys need JavaScript and a browser that supports them."
# Reports each navigator.credentials.get (the browser's, still called as it is) and its abort to the test, by the
# mediation asked for: the test sees the e-mail field's autofill request waiting and the button ending it.
REPORT_CREDENTIAL_REQUESTS = """(() => {
    const get = navigator.credentials.get.bind(navigator.credentials);
    navigator.credentials.get = options => {
        const mediation = options.mediation || "modal";
        const report = event => window.reportCredentialRequest(event, mediation);
        report("get");
        if (options.signal) options.signal.addEventListener("abort", () => report("abort"));
        return get(options);
    };
})()"""


@pytest.fixture
def site(portal, clock) -> LiveServer:  # noqa: F811
    return LiveServer(url=portal.url, app=portal.app, clock=clock)


def turn_on_authenticator_app(page: Page, clock: FrozenClock) -> tuple[str, list[str]]:
    """On the two-step page: set the app up with a code computed from the key on the page; the key and the recovery
    codes shown (the set-up step's wrong code is tests/e2e/test_two_step.py's)."""
    press(page, "button", "Set up an authenticator app")
    key = setup_key(page)
    page.get_by_label(CODE_FIELD).fill(pyotp.TOTP(key).at(clock.now()))
    press(page, "button", "Turn on")
    codes = shown_codes(page)
    assert len(codes) == 10
    press(page, "link", "I have saved them")
    return key, codes


def wrong_code(key: str, clock: FrozenClock) -> str:
    """Six digits no step within the ±1 skew window shows."""
    shown = {pyotp.TOTP(key).at(clock.now(), counter_offset=offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222") if code not in shown)


def user_present(cdp, authenticator_id: str, present: bool) -> None:
    """Whether the virtual authenticator finds the user present (touch, biometric) for the requests that come next."""
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator_id, "enabled": present})


def sign_out(page: Page, base_url: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base_url}/login")


def password_step(page: Page, base_url: str) -> None:
    """The password is right and the account has a second factor: the second step, not yet signed in."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}{VERIFY}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-step verification")


def verify_with(page: Page, code: str) -> None:
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Verify", exact=True).click()


def expect_signed_in_with(page: Page, base_url: str, methods: str) -> None:
    """Home after a sign-in, then what the devices page says about this device's session (DESIGN §9)."""
    expect(page).to_have_url(f"{base_url}/")
    visit(page, f"{base_url}/account/devices")
    this_device = page.locator(".device").filter(has=page.locator(".tag", has_text="This device"))
    expect(this_device.locator("div:has(> dt:text-is('Signed in with')) > dd")).to_have_text(methods)


def test_authenticator_app_code_then_a_recovery_code_once(site, owner, new_context):
    page = new_context(bypass_csp=True).new_page()  # bypass only so the axe-core checks can be injected
    sign_in(page, site.url)
    visit(page, f"{site.url}/account/two-step")
    key, recovery_codes = turn_on_authenticator_app(page, site.clock)
    sign_out(page, site.url)

    password_step(page, site.url)
    expect(page.get_by_text("Enter the 6-digit code from your authenticator app for")).to_be_visible()
    expect(page.get_by_role("button", name="Use a passkey")).to_have_count(0)
    expect_axe_clean(page)
    verify_with(page, pyotp.TOTP(key).at(site.clock.now()))  # the code that turned the app on: spent
    expect(page.locator("#code-error")).to_have_text(
        "That code was already used. Wait for your authenticator app to show a new one."
    )
    site.clock.advance(seconds=TOTP_STEP_SECONDS)  # the app shows the next code
    verify_with(page, wrong_code(key, site.clock))
    expect(page).to_have_url(f"{site.url}{VERIFY}")
    expect(page.locator("#code-error")).to_have_text(WRONG_CODE)
    expect(page.locator("[data-error-summary]")).to_be_focused()
    expect_axe_clean(page)
    with page.expect_response(is_status_poll):
        verify_with(page, pyotp.TOTP(key).at(site.clock.now()))
    expect_signed_in_with(page, site.url, "Password + authenticator app")

    # A recovery code in the same field, in place of an app code: once.
    sign_out(page, site.url)
    password_step(page, site.url)
    with page.expect_response(is_status_poll):
        verify_with(page, recovery_codes[0])
    expect_signed_in_with(page, site.url, "Password + recovery code")
    visit(page, f"{site.url}/account/two-step")
    expect(page.locator("#recovery-count")).to_have_text("9 of 10 recovery codes left.")
    sign_out(page, site.url)
    password_step(page, site.url)
    verify_with(page, recovery_codes[0])
    expect(page).to_have_url(f"{site.url}{VERIFY}")
    expect(page.locator("#code-error")).to_have_text("That recovery code was already used. Each one works once.")


def test_a_passkey_signs_in_alone_and_as_the_second_step(site, owner, new_context):
    context = new_context(bypass_csp=True)  # bypass only so the axe-core checks can be injected
    requests: list[tuple[str, str]] = []
    context.expose_function("reportCredentialRequest", lambda event, mediation: requests.append((event, mediation)))
    context.add_init_script(REPORT_CREDENTIAL_REQUESTS)
    page = context.new_page()
    cdp, authenticator_id = virtual_authenticator(context, page)
    sign_in(page, site.url)
    visit(page, f"{site.url}/account/two-step")
    page.locator("#passkeys").get_by_role("button", name="Add a passkey").click()
    press(page, "link", "I have saved them")

    # The e-mail field's autofill: the virtual authenticator answers a conditional request at once, as a user picking
    # the passkey from the field's suggestions would. Signing out lands on /login, which signs in again by itself.
    requests.clear()
    with page.expect_response(is_status_poll):
        page.get_by_role("button", name="Sign out").click()
    assert requests == [("get", "conditional")]
    expect_signed_in_with(page, site.url, "Passkey")

    # The button, pressed while the autofill request waits (the authenticator holds it until the user is present).
    # Without aborting it first, Chromium refuses the button's request and nobody signs in.
    user_present(cdp, authenticator_id, False)
    sign_out(page, site.url)
    page.wait_for_load_state("networkidle")
    user_present(cdp, authenticator_id, True)
    requests.clear()
    with page.expect_response(is_status_poll):
        page.get_by_role("button", name="Sign in with a passkey", exact=True).click()
    assert requests == [("abort", "conditional"), ("get", "modal")]
    expect_signed_in_with(page, site.url, "Passkey")

    # The password, then the passkey as the second step (no autofill answering on /login meanwhile).
    user_present(cdp, authenticator_id, False)
    sign_out(page, site.url)
    password_step(page, site.url)
    user_present(cdp, authenticator_id, True)
    expect(page.get_by_text("Use your passkey for")).to_be_visible()
    button = page.get_by_role("button", name="Use a passkey", exact=True)
    expect(button).to_be_enabled()
    expect(page.get_by_text(NEEDS_JAVASCRIPT)).to_be_hidden()
    expect_axe_clean(page)
    screenshot(page, "login-verify.png")
    page.set_viewport_size(PHONE)
    expect_axe_clean(page)
    screenshot(page, "login-verify-mobile.png")
    page.set_viewport_size(DESKTOP)
    with page.expect_response(is_status_poll):
        button.click()
    expect_signed_in_with(page, site.url, "Password + passkey")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_sign_in_page_offers_a_passkey(site, new_context, viewport):
    page = new_context(viewport=viewport, bypass_csp=True).new_page()
    page.goto(f"{site.url}/login")
    expect(page.get_by_role("button", name="Sign in with a passkey", exact=True)).to_be_enabled()
    expect(page.get_by_text(NEEDS_JAVASCRIPT)).to_be_hidden()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow == 0, f"/login scrolls sideways at {viewport['width']} px"
    expect_axe_clean(page)
    screenshot(page, "login-passkey.png" if viewport == DESKTOP else "login-passkey-mobile.png")


def test_without_javascript_the_password_still_signs_in(site, owner, new_context):
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{site.url}/login")
    button = page.get_by_role("button", name="Sign in with a passkey", exact=True)
    expect(button).to_be_disabled()
    expect(button).to_have_accessible_description(NEEDS_JAVASCRIPT)
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{site.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Welcome"))
