"""The owner's security page in a real browser: the policy card, who may see it, signing everyone out."""

import re

from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import (
    BY_OWNER,
    ELSEWHERE,
    FIREFOX_ON_WINDOWS,
    dialog_labels,
    expect_signed_out,
    reload,
    sign_in,
    visit,
)

IDLE = "Idle timeout (minutes)"
ABSOLUTE = "Absolute timeout (minutes)"
APPLY_NOW = "Also apply to sessions already signed in"
PRESETS = ("Strict", "Standard", "Custom")


def preset(page: Page, name: str):
    return page.get_by_role("radio", name=re.compile(rf"^{name}\b"))


def test_custom_policy_error_keeps_the_input_then_saves(live_server, owner, page):
    sign_in(page, live_server.url)
    visit(page, f"{live_server.url}/account/security")
    expect(page.get_by_role("heading", level=1)).to_have_text("Session security")
    idle, absolute = page.get_by_label(IDLE), page.get_by_label(ABSOLUTE)

    # Standard is the default: its minutes are shown but cannot be edited.
    expect(preset(page, "Standard")).to_be_checked()
    expect(idle).to_have_value("30")
    expect(absolute).to_have_value("720")
    expect(idle).to_be_disabled()
    expect(absolute).to_be_disabled()
    screenshot(page, "security.png")
    preset(page, "Strict").check()
    expect(idle).to_be_disabled()
    expect(absolute).to_be_disabled()

    preset(page, "Custom").check()
    expect(idle).to_be_enabled()
    expect(absolute).to_be_enabled()
    idle.fill("2")
    page.get_by_role("button", name="Save").click()

    error = page.locator("#idle_minutes-error")
    expect(error).to_have_text("Must be between 5 and 1440 minutes.")
    expect(page.locator(".field--invalid")).to_have_count(1)
    expect(page.locator(".field--invalid").get_by_label(IDLE)).to_be_visible()  # the error sits by its field
    expect(idle).to_have_value("2")
    expect(idle).to_have_attribute("aria-invalid", "true")
    expect(idle).to_have_attribute("aria-describedby", "idle_minutes-hint idle_minutes-error")
    expect(preset(page, "Custom")).to_be_checked()
    expect(idle).to_be_enabled()  # still editable after the card was swapped
    expect(page.locator("#policy-card .notice--success")).to_have_count(0)
    screenshot(page, "security-error.png")

    reload(page)
    expect(preset(page, "Standard")).to_be_checked()
    expect(idle).to_have_value("30")
    expect(page.locator("#idle_minutes-error")).to_have_count(0)

    preset(page, "Custom").check()
    idle.fill("20")
    absolute.fill("600")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#policy-card .notice--success")).to_have_text(
        "Saved Custom: signs out after 20 min idle, 10 hours at most."
    )
    expect(page.locator(".field--invalid")).to_have_count(0)

    reload(page)
    expect(preset(page, "Custom")).to_be_checked()
    expect(idle).to_have_value("20")
    expect(absolute).to_have_value("600")
    expect(idle).to_be_enabled()

    preset(page, "Standard").check()
    expect(idle).to_be_disabled()
    expect(absolute).to_be_disabled()


def test_every_security_page_input_has_a_label(live_server, owner, page):
    sign_in(page, live_server.url)
    visit(page, f"{live_server.url}/account/security")

    for label in (*PRESETS, IDLE, ABSOLUTE, APPLY_NOW):
        expect(page.get_by_label(label)).to_have_count(1)
    unlabelled = page.locator("#main").evaluate(
        """main => [...main.querySelectorAll("input:not([type=hidden]), select, textarea")]
            .filter(input => input.labels.length === 0 && !input.getAttribute("aria-label"))
            .map(input => input.outerHTML)"""
    )
    assert unlabelled == []
    expect(page.get_by_role("group", name="Policy")).to_be_visible()  # the radios' fieldset and legend
    expect(page.get_by_label(IDLE)).to_have_attribute("aria-describedby", "idle_minutes-hint")
    expect(page.locator("#idle_minutes-hint")).to_have_text("From 5 min up to 1 day (5\u20131440 minutes).")

    # Dialogs are named by their title and described by their text.
    assert dialog_labels(page) == {
        "dialog-revoke-all": [
            "Sign out everyone, including you?",
            "Every session in Example ends now, this one too. Everyone, you included, will need to sign in again.",
        ]
    }

    trigger = page.get_by_role("link", name="Sign out everyone, including me")
    trigger.focus()
    page.keyboard.press("Enter")  # keyboard users open the modal too
    dialog = page.get_by_role("dialog", name="Sign out everyone, including you?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Sign out everyone")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Cancel
    expect(dialog).to_be_hidden()
    expect(trigger).to_be_focused()


def test_a_member_gets_403_and_no_security_link(live_server, owner, page):
    sign_in(page, live_server.url, email=factories.MEMBER_EMAIL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Grace Hopper")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Devices")).to_be_visible()
    expect(nav.get_by_role("link", name="Security")).to_have_count(0)

    response = page.goto(f"{live_server.url}/account/security")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_text("Error 403")).to_be_visible()
    expect(page.get_by_text("You do not have access to this page.")).to_be_visible()
    expect(page.get_by_role("textbox")).to_have_count(0)
    expect(page.get_by_role("link", name="Security")).to_have_count(0)


def test_owner_signs_out_everyone_else_then_everyone(live_server, owner, new_context):
    member = new_context().new_page()
    sign_in(member, live_server.url, email=factories.MEMBER_EMAIL)
    second = new_context(user_agent=FIREFOX_ON_WINDOWS).new_page()
    sign_in(second, live_server.url)
    page = new_context().new_page()
    sign_in(page, live_server.url)
    visit(page, f"{live_server.url}/account/security")
    expect(page.locator(".person__name")).to_have_text(["Ada Lovelace (you)", "Grace Hopper"])

    # Each scope has its own wording; the one that includes you is the red one.
    others_trigger = page.get_by_role("link", name="Sign out everyone else")
    others_trigger.click()
    others = page.get_by_role("dialog", name="Sign out everyone else?")
    expect(others).to_be_visible()
    expect(others).to_contain_text("Everyone in Example (1 other person, and your other devices) will be signed out.")
    expect(others.get_by_role("button", name="Sign out everyone else")).to_have_class(re.compile("button--danger"))
    page.keyboard.press("Escape")
    expect(others).to_be_hidden()
    expect(others_trigger).to_be_focused()

    page.get_by_role("link", name="Sign out everyone, including me").click()
    everyone = page.get_by_role("dialog", name="Sign out everyone, including you?")
    expect(everyone).to_be_visible()
    confirm_all = everyone.get_by_role("button", name="Sign out everyone", exact=True)
    expect(confirm_all).to_have_class(re.compile("button--danger"))
    expect(everyone.get_by_role("button", name="Sign out everyone else")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(everyone).to_be_hidden()

    others_trigger.click()
    others.get_by_role("button", name="Sign out everyone else").click()
    expect(page).to_have_url(f"{live_server.url}/account/security")
    expect(page.locator(".notice--success")).to_have_text("Signed out 2 sessions. Only this device stays signed in.")
    expect(page.locator(".person__name")).to_have_text(["Ada Lovelace (you)"])
    expect(page.get_by_role("link", name="Sign out everyone else")).to_have_count(0)

    expect_signed_out(member, BY_OWNER)
    expect_signed_out(second, ELSEWHERE)  # the owner's own other device
    reload(page)
    expect(page).to_have_url(f"{live_server.url}/account/security")

    # Grace signs in again; then the owner ends every session, their own included.
    sign_in(member, live_server.url, email=factories.MEMBER_EMAIL)
    reload(page)
    page.get_by_role("link", name="Sign out everyone, including me").click()
    confirm_all.click()

    expect(page.get_by_role("heading", name="Everyone is signed out")).to_be_visible()
    expect(page.locator(".notice--success")).to_have_text("Signed out 2 sessions, including yours.")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    # No timed redirect (WCAG 2.2.1): the notice has the focus, and the next step is a link.
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    expect(page.locator(".notice--success")).to_be_focused()
    screenshot(page, "signed-out-everyone.png")
    page.get_by_role("link", name="Sign in again").click()
    expect(page.get_by_role("heading", name="Sign in to Gatehouse")).to_be_visible()
    expect_signed_out(member, BY_OWNER)


def test_account_page_screenshot(live_server, owner, page):
    sign_in(page, live_server.url)
    visit(page, f"{live_server.url}/account")
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    for label in ("Current password", "New password", "Repeat the new password"):
        expect(page.get_by_label(label, exact=True)).to_have_attribute("type", "password")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Account")).to_have_attribute(
        "aria-current", "page"
    )
    screenshot(page, "account-password.png")
