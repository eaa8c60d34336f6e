"""An owner requires two-step verification, in a real browser (issue 11 item 5): the switch on the security card
(axe-core clean before and after), the owner without a second step sent to set one up, and a member who signs in
with the password held at /account/two-step until they set up an authenticator app (codes computed with pyotp from
the key on the page), then on to the devices page; the people list follows."""

import pyotp
from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import is_status_poll, sign_in, visit
from tests.e2e.test_accessibility import violations

SWITCH = "Require two-step verification"
REQUIRED_NOTICE = "Your account requires two-step verification."


def expect_axe_clean(page: Page) -> None:
    assert violations(page) == [], page.url


def press(page: Page, role: str, name: str) -> None:
    """Click something that loads a signed-in page and wait for its first status poll (no poll left in flight)."""
    with page.expect_response(is_status_poll):
        page.get_by_role(role, name=name, exact=True).click()


def set_up_authenticator_app(page: Page, live_server) -> None:
    """From /account/two-step: set up, type the code an app that read the key on the page would show, save."""
    press(page, "button", "Set up an authenticator app")
    key = page.locator("#setup-key").inner_text().replace(" ", "")
    page.get_by_label("6-digit code from the app").fill(pyotp.TOTP(key).at(live_server.clock.now()))
    press(page, "button", "Turn on")
    expect(page.get_by_role("heading", level=1)).to_have_text("Save your recovery codes")
    press(page, "link", "I have saved them")


def person(page: Page, email: str):
    return page.locator("#two-step-card .person", has_text=email)


def test_the_owner_requires_it_and_a_member_must_set_it_up_before_anything_else(live_server, owner, new_context):
    owner_page = new_context(bypass_csp=True).new_page()  # bypass only so that axe-core can be injected
    sign_in(owner_page, live_server.url)
    visit(owner_page, f"{live_server.url}/account/security")
    switch = owner_page.get_by_role("switch", name=SWITCH)
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(owner_page.locator("#two-step-you")).to_contain_text("You have no second step yet")
    expect(person(owner_page, factories.MEMBER_EMAIL)).to_contain_text("No second step")
    expect_axe_clean(owner_page)
    screenshot(owner_page, "security-two-step-off.png")

    with owner_page.expect_response(is_status_poll):
        switch.click()
    expect(owner_page).to_have_url(f"{live_server.url}/account/two-step")  # held like everyone, not locked out
    expect(owner_page.locator("#two-step-required")).to_contain_text(REQUIRED_NOTICE)
    expect_axe_clean(owner_page)
    set_up_authenticator_app(owner_page, live_server)
    visit(owner_page, f"{live_server.url}/account/security")
    expect(owner_page.get_by_role("switch", name=SWITCH)).to_have_attribute("aria-checked", "true")
    expect(person(owner_page, factories.OWNER_EMAIL)).to_contain_text("Authenticator app · 10 of 10 recovery codes")
    expect(owner_page.locator("#two-step-card")).to_contain_text("1 of 2 people has no second step yet.")
    expect_axe_clean(owner_page)
    screenshot(owner_page, "security-two-step-on.png")

    member_page = new_context().new_page()
    member_page.goto(f"{live_server.url}/account/devices")
    member_page.get_by_label("Email").fill(factories.MEMBER_EMAIL)
    member_page.get_by_label("Password").fill(factories.PASSWORD)
    with member_page.expect_response(is_status_poll):
        member_page.get_by_role("button", name="Sign in", exact=True).click()
    expect(member_page).to_have_url(f"{live_server.url}/account/two-step")
    expect(member_page.locator("#two-step-required")).to_contain_text(
        "Set up an authenticator app or a passkey to continue"
    )
    press(member_page, "link", "Devices")  # every other page leads back here
    expect(member_page).to_have_url(f"{live_server.url}/account/two-step")

    set_up_authenticator_app(member_page, live_server)
    expect(member_page.locator("#two-step-required")).to_contain_text("but not the last one")
    press(member_page, "link", "Devices")
    expect(member_page).to_have_url(f"{live_server.url}/account/devices")
    expect(member_page.get_by_role("heading", level=1)).to_be_visible()

    visit(owner_page, f"{live_server.url}/account/security")
    expect(person(owner_page, factories.MEMBER_EMAIL)).to_contain_text("Authenticator app · 10 of 10 recovery codes")
    expect(owner_page.locator("#two-step-card")).to_contain_text("Everyone has a second step.")
