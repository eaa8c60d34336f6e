"""The demo client app in a browser, beside a live portal: signed in through Gatehouse, it fits a phone (issue 9
item 16: no sideways scrolling at 375 px), and the portal shows the app under the device that signed in."""

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import DESKTOP, screenshot
from tests.relying_party.conftest import app, demo, kit_clock, portal  # noqa: F401 (fixtures: a live portal and demo app)

PHONE = {"width": 375, "height": 740}


def sign_in_through_the_demo(page: Page, demo_url: str) -> None:
    page.goto(demo_url)
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Hello, Ada")).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_demo_app_fits_the_screen_when_signed_in(portal, demo, owner, new_context, viewport):  # noqa: F811
    page = new_context(viewport=viewport).new_page()
    page.goto(demo.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    sign_in_through_the_demo(page, demo.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", name="What the Demo App knows about you")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    # A grant id is 43 URL-safe characters that may hold no hyphen to break at: the longest still fits.
    page.locator(".facts dd").last.evaluate("dd => { dd.textContent = 'x'.repeat(64); }")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    if viewport is DESKTOP:
        screenshot(page, "demo-app.png")
        page.goto(f"{portal.url}/account/devices")
        expect(page.locator(".apps__item")).to_contain_text("Demo App")
        screenshot(page, "devices-connected-app.png")
