"""Issue 5's four scenarios in Chromium: the portal on localhost and the demo app on 127.0.0.1 (two sites, no
shared cookie). The kit's clock moves instead of sleeping; the portal's worker is one deliver_due() call.

Playwright runs in a thread of its own: tests/e2e may already hold the sync API on the main thread in this run.
"""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from app.accounts.models import User
from app.oauth import backchannel
from app.oauth.models import OAuthGrant
from app.relying_party import ACR_MFA
from tests import factories
from tests.conftest import need
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, TIMEOUT_MS
from tests.factors.conftest import app_code, enrolled
from tests.relying_party.conftest import SIGNED_IN, SIGNED_OUT

pytestmark = pytest.mark.browser
SIGNED_OUT_NOTICE = "You were signed out of Gatehouse."


class Chromium:
    """Debian's Chromium driven from one dedicated thread; run(fn) calls fn(browser) there."""

    def __init__(self):
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chromium")
        self._playwright, self.browser = self._thread.submit(self._start).result()

    @staticmethod
    def _start():
        playwright = sync_playwright().start()
        return playwright, playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

    def run(self, scenario: Callable[[Browser], None]) -> None:
        self._thread.submit(scenario, self.browser).result(timeout=120)

    def close(self) -> None:
        def stop():
            self.browser.close()
            self._playwright.stop()

        self._thread.submit(stop).result()
        self._thread.shutdown()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium): browser tests skipped")
    driver = Chromium()
    try:
        yield driver
    finally:
        driver.close()


def new_page(browser: Browser) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    return context, context.new_page()


def portal_sign_in(page: Page) -> None:
    """The portal's sign-in form, wherever the browser was sent to it."""
    expect(page.get_by_role("heading", name="Sign in to Gatehouse")).to_be_visible()
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_in_to_demo(page: Page, demo_url: str) -> None:
    """Scenario 1: open the demo app, Sign in, the portal's form, and back: "Hello, Ada"."""
    page.goto(f"{demo_url}/")
    expect(page.get_by_role("heading", name=SIGNED_OUT)).to_be_visible()
    page.get_by_role("link", name="Sign in").click()
    portal_sign_in(page)
    expect(page).to_have_url(f"{demo_url}/")
    expect(page.get_by_role("heading", name=SIGNED_IN)).to_be_visible()


def portal_sign_out(page: Page, portal_url: str) -> None:
    page.goto(f"{portal_url}/")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Gatehouse")).to_be_visible()


def expect_signed_out(page: Page) -> None:
    expect(page.get_by_role("heading", name=SIGNED_OUT)).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()


def sign_in_attempts(page: Page) -> list[dict]:
    """Every /auth/login the page navigates to, with its query."""
    seen: list[dict] = []
    page.on("request", lambda r: seen.append(parse_qs(urlsplit(r.url).query)) if "/auth/login" in r.url else None)
    return seen


def test_sign_in_sets_the_device_cookie_and_greets_the_user(chromium, portal, demo, clock):
    def scenario(browser):
        context, page = new_page(browser)
        sign_in_to_demo(page, demo.url)
        cookie = next(c for c in context.cookies(demo.url) if c["name"] == "demo_did")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > time.time() + 399 * 86400
        assert not any(c["name"] == "demo_did" for c in context.cookies(portal.url))  # first-party only
        with portal.app.app_context():
            assert OAuthGrant.query.filter_by(device_id=cookie["value"]).count() == 1
        context.close()

    chromium.run(scenario)


def test_a_portal_sign_out_is_seen_within_a_second_through_the_back_channel(chromium, portal, demo, clock):
    def scenario(browser):
        context, page = new_page(browser)
        sign_in_to_demo(page, demo.url)
        portal_sign_out(page, portal.url)
        started = time.monotonic()
        with portal.app.app_context():
            assert backchannel.deliver_due(clock.now()) == 1  # one pass of `flask worker`
        page.goto(f"{demo.url}/")
        expect_signed_out(page)
        expect(page.get_by_role("status")).to_have_text(SIGNED_OUT_NOTICE)
        assert time.monotonic() - started < 1.0
        context.close()

    chromium.run(scenario)


def test_without_the_back_channel_the_sign_out_is_seen_when_the_grant_check_expires(chromium, portal, demo,
                                                                                     kit_clock):  # fmt: skip
    def scenario(browser):
        context, page = new_page(browser)
        sign_in_to_demo(page, demo.url)
        portal_sign_out(page, portal.url)  # its logout token is never delivered
        page.goto(f"{demo.url}/")
        expect(page.get_by_role("heading", name=SIGNED_IN)).to_be_visible()  # the answer cached 60 s
        kit_clock.advance(seconds=61)
        page.goto(f"{demo.url}/")
        expect_signed_out(page)
        context.close()

    chromium.run(scenario)


def signed_out_by_the_portal(browser, portal, demo, clock):
    """Signed in to the demo app, then signed out in the portal (logout delivered): the app shows it."""
    context, page = new_page(browser)
    sign_in_to_demo(page, demo.url)
    portal_sign_out(page, portal.url)
    with portal.app.app_context():
        backchannel.deliver_due(clock.now())
    page.goto(f"{demo.url}/")
    expect_signed_out(page)
    return context, page


def test_signing_in_to_the_portal_again_signs_the_app_back_in_without_a_click(chromium, portal, demo, clock,
                                                                              kit_clock):  # fmt: skip
    def scenario(browser):
        context, page = signed_out_by_the_portal(browser, portal, demo, clock)
        page.goto(f"{portal.url}/login")
        portal_sign_in(page)
        kit_clock.advance(seconds=16)  # past the cached device-check answer
        attempts = sign_in_attempts(page)
        page.goto(f"{demo.url}/")
        expect(page).to_have_url(f"{demo.url}/")
        expect(page.get_by_role("heading", name=SIGNED_IN)).to_be_visible()
        assert [a.get("silent") for a in attempts] == [["1"]]
        context.close()

    chromium.run(scenario)


def test_a_portal_sign_in_on_another_browser_only_leaves_this_one_signed_out(chromium, portal, demo, clock,
                                                                              kit_clock):  # fmt: skip
    """No loop: one prompt=none try answered login_required, then quiet until five minutes have passed."""

    def scenario(browser):
        context, page = signed_out_by_the_portal(browser, portal, demo, clock)
        other, other_page = new_page(browser)
        other_page.goto(f"{portal.url}/login")
        portal_sign_in(other_page)
        kit_clock.advance(seconds=16)
        attempts = sign_in_attempts(page)
        page.goto(f"{demo.url}/")  # reauthorize → prompt=none → login_required → signed out
        expect(page).to_have_url(f"{demo.url}/")
        expect_signed_out(page)
        for _ in range(2):
            kit_clock.advance(seconds=16)  # the device check is asked again, and still says reauthorize
            page.reload()
            expect_signed_out(page)
        assert len(attempts) == 1, attempts
        kit_clock.advance(minutes=5)  # one quiet retry after five minutes, then quiet again
        page.reload()
        expect_signed_out(page)
        assert len(attempts) == 2, attempts
        other.close()
        context.close()

    chromium.run(scenario)


def test_a_page_needing_two_step_verification_asks_the_portal_for_it(chromium, portal, demo, clock):
    """Issue 11 item 7: signed in with the password only, then an authenticator app set up: Billing sends the browser
    to the portal's second step (a code computed from the app's key) and back, showing acr mfa and amr pwd otp."""

    def scenario(browser):
        context, page = new_page(browser)
        sign_in_to_demo(page, demo.url)
        with portal.app.app_context():
            enrolment = enrolled(User.by_email(factories.OWNER_EMAIL), clock.now())
        page.get_by_role("link", name="Billing (needs two-step verification)").click()
        expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_label("Code from your authenticator app").fill(app_code(enrolment, clock.now()))
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(f"{demo.url}/billing")
        expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()
        expect(page.locator(".facts")).to_contain_text(ACR_MFA)
        expect(page.locator(".facts")).to_contain_text("pwd otp")
        context.close()

    chromium.run(scenario)


def test_without_a_second_factor_the_page_says_to_set_one_up(chromium, portal, demo):
    def scenario(browser):
        context, page = new_page(browser)
        sign_in_to_demo(page, demo.url)
        attempts = sign_in_attempts(page)
        page.get_by_role("link", name="Billing (needs two-step verification)").click()
        expect(page.get_by_role("heading", name="Two-step verification needed")).to_be_visible()
        expect(page).to_have_url(f"{demo.url}/billing")
        expect(page.get_by_text("Set it up in your Gatehouse account, then try again.")).to_be_visible()
        link = page.get_by_role("link", name="Set up two-step verification")
        expect(link).to_have_attribute("href", f"{portal.url}/account/two-step")
        page.reload()
        expect(page.get_by_role("heading", name="Two-step verification needed")).to_be_visible()
        assert [a.get("acr") for a in attempts] == [[ACR_MFA]]  # one try, then no loop
        context.close()

    chromium.run(scenario)
