"""The devices page in a real browser: the list, signing one device out, signing out all the others."""

import re

from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import MOBILE, screenshot
from tests.e2e.helpers import (
    ELSEWHERE,
    FIREFOX_ON_WINDOWS,
    dialog_labels,
    expect_signed_out,
    sign_in,
    sign_in_on_three_devices,
    visit,
)


def device_rows(page: Page):
    return page.locator("#device-list .device")


def test_three_devices_are_listed_newest_activity_first(live_server, owner, new_context):
    devices = sign_in_on_three_devices(live_server, new_context)
    page = devices.chromium
    visit(page, f"{live_server.url}/account/devices")

    expect(page.get_by_role("heading", level=1)).to_have_text("Your devices")
    expect(page.get_by_role("heading", name="3 signed-in devices")).to_be_visible()
    rows = device_rows(page)
    expect(rows).to_have_count(3)
    # Most recently active first: this device (now), Safari (2 min ago), Firefox (4 min ago).
    expect(rows.locator(".device__name")).to_have_text(
        [
            re.compile(rf"^\s*{re.escape(devices.chromium_name)}\s+This device\s*$"),
            "Mobile Safari on iOS",
            "Firefox on Windows",
        ]
    )
    expect(page.locator(".tag")).to_have_count(1)
    expect(rows.nth(0).locator(".tag")).to_have_text("This device")
    expect(rows.nth(1).locator(".device__detail")).to_have_text("Mobile Safari 17 · iOS 17.4")
    expect(rows.nth(2).locator(".device__detail")).to_have_text("Firefox 128 · Windows 10")
    last_active = rows.locator("dt:text-is('Last active') + dd")
    expect(last_active).to_have_text(["just now", "2 min ago", "4 min ago"])
    # Every device but this one can be signed out from here; this one uses the header button.
    expect(rows.nth(0).get_by_role("link", name=re.compile("^Sign out"))).to_have_count(0)
    expect(page.get_by_role("link", name="Sign out Mobile Safari on iOS")).to_be_visible()
    expect(page.get_by_role("link", name="Sign out Firefox on Windows")).to_be_visible()
    screenshot(page, "devices.png")


def test_sign_out_one_device_with_the_modal(live_server, owner, new_context):
    devices = sign_in_on_three_devices(live_server, new_context)
    page = devices.chromium
    visit(page, f"{live_server.url}/account/devices")
    page.evaluate("window.__noFullReload = 'still here'")

    labels = dialog_labels(page)
    assert [title for title, _body in labels.values()] == [
        "Sign out all other devices?",
        "Sign out Mobile Safari on iOS?",
        "Sign out Firefox on Windows?",
    ]
    assert (
        labels["dialog-device-3"][1]
        == "Firefox on Windows (127.0.0.1, last active 4 min ago) will be signed out at its next request. "
        "Apps signed in from it are disconnected too."
    )

    trigger = page.get_by_role("link", name="Sign out Firefox on Windows")
    trigger.click()
    dialog = page.get_by_role("dialog", name="Sign out Firefox on Windows?")
    expect(dialog).to_have_attribute("aria-labelledby", "dialog-device-3-title")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    assert page.url == f"{live_server.url}/account/devices", "the link navigated instead of opening the modal"
    screenshot(page, "devices-confirm-modal.png")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(trigger).to_be_focused()
    expect(device_rows(page)).to_have_count(3)

    trigger.click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Sign out device").click()

    expect(device_rows(page)).to_have_count(2)
    expect(page.locator("#device-list .notice--success")).to_have_text(
        "Signed out Firefox on Windows. It will need to sign in again."
    )
    expect(page.get_by_text("Firefox on Windows", exact=True)).to_have_count(0)
    # Swapped in place (htmx): the page's globals survive and focus follows to the list's heading.
    assert page.evaluate("window.__noFullReload") == "still here"
    expect(page.get_by_role("heading", name="2 signed-in devices")).to_be_focused()

    expect_signed_out(devices.firefox, ELSEWHERE)
    # The other two are untouched.
    visit(devices.safari, f"{live_server.url}/account/devices")
    expect(devices.safari).to_have_url(f"{live_server.url}/account/devices")


def test_sign_out_all_other_devices_with_a_fresh_sign_in(live_server, owner, new_context):
    devices = sign_in_on_three_devices(live_server, new_context)
    page = devices.chromium
    visit(page, f"{live_server.url}/account/devices")
    page.evaluate("window.__noFullReload = 'still here'")

    trigger = page.get_by_role("link", name="Sign out all other devices")
    trigger.click()
    dialog = page.get_by_role("dialog", name="Sign out all other devices?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Sign out other devices").click()

    expect(device_rows(page)).to_have_count(1)
    expect(device_rows(page).locator(".tag")).to_have_text("This device")
    expect(page.locator("#device-list .notice--success")).to_have_text("Signed out 2 other devices.")
    expect(page.get_by_role("heading", name="1 signed-in device")).to_be_focused()
    expect(page.get_by_role("link", name="Sign out all other devices")).to_have_count(0)
    assert page.evaluate("window.__noFullReload") == "still here"

    expect_signed_out(devices.firefox, ELSEWHERE)
    expect_signed_out(devices.safari, ELSEWHERE)
    visit(page, f"{live_server.url}/account/devices")
    expect(page).to_have_url(f"{live_server.url}/account/devices")


def test_sign_out_all_other_devices_asks_for_the_password_after_ten_minutes(live_server, owner, new_context):
    other = new_context(user_agent=FIREFOX_ON_WINDOWS).new_page()
    sign_in(other, live_server.url)
    page = new_context().new_page()
    sign_in(page, live_server.url)
    live_server.clock.advance(minutes=11)  # past the 10 minute freshness window, well inside the 30 min idle one

    visit(page, f"{live_server.url}/account/devices")
    page.get_by_role("link", name="Sign out all other devices").click()

    expect(page).to_have_url(re.compile(r"/account/reauthenticate\?next=.*sign-out-others"))
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    password = page.get_by_label("Password")
    expect(password).to_be_focused()
    password.fill(factories.PASSWORD)
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(f"{live_server.url}/account/devices/sign-out-others")
    expect(page.get_by_role("heading", name="Sign out all other devices?")).to_be_visible()
    page.get_by_role("button", name="Sign out other devices").click()

    expect(page).to_have_url(f"{live_server.url}/account/devices")
    expect(page.locator(".notice--success")).to_have_text("Signed out 1 other device.")
    expect(device_rows(page)).to_have_count(1)
    expect_signed_out(other, ELSEWHERE)


def test_without_javascript_a_device_is_signed_out_through_a_confirmation_page(live_server, owner, new_context):
    other = new_context(user_agent=FIREFOX_ON_WINDOWS).new_page()
    sign_in(other, live_server.url)
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/account/devices")
    expect(device_rows(page)).to_have_count(2)
    page.get_by_role("link", name="Sign out Firefox on Windows").click()

    expect(page).to_have_url(re.compile(r"/account/devices/[^/]+/sign-out$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign out Firefox on Windows?")
    expect(page.get_by_role("link", name="Cancel")).to_have_attribute("href", "/account/devices")
    page.get_by_role("button", name="Sign out device").click()

    expect(page).to_have_url(f"{live_server.url}/account/devices")
    expect(page.locator(".notice--success")).to_have_text(
        "Signed out Firefox on Windows. It will need to sign in again."
    )
    expect(device_rows(page)).to_have_count(1)
    expect(page.get_by_text("Firefox on Windows", exact=True)).to_have_count(0)
    expect_signed_out(other, ELSEWHERE)


def test_devices_page_fits_a_phone(live_server, owner, new_context):
    other = new_context(user_agent=FIREFOX_ON_WINDOWS).new_page()
    sign_in(other, live_server.url)
    live_server.clock.advance(minutes=3)
    page = new_context(viewport=MOBILE, is_mobile=True, has_touch=True).new_page()
    sign_in(page, live_server.url)
    visit(page, f"{live_server.url}/account/devices")

    expect(device_rows(page)).to_have_count(2)
    expect(page.get_by_role("link", name="Sign out Firefox on Windows")).to_be_visible()
    expect(page.get_by_role("link", name="Sign out all other devices")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow == 0, "the devices page scrolls sideways on a 360 px wide screen"
    screenshot(page, "devices-mobile.png")
