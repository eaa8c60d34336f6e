"""Pages as a user meets them (issue 9 items 15 and 16): the nav at 320 px, error summaries, the policy card's
stale errors with and without JavaScript, and the consent page."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.helpers import sign_in, visit
from tests.e2e.test_accessibility import consent_url

NAV_ITEMS = ["Home", "Devices", "Apps", "Account", "Two-step", "People", "Security"]


@pytest.mark.parametrize("width", [320, 375])
def test_every_nav_item_is_in_sight_on_a_phone(live_server, owner, new_context, width):
    page = new_context(viewport={"width": width, "height": 640}).new_page()
    sign_in(page, live_server.url)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(NAV_ITEMS)
    for name in NAV_ITEMS:
        box = nav.get_by_role("link", name=name).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing hides off to the side


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_failed_sign_in_starts_at_the_error_summary(live_server, owner, new_context, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    summary.get_by_role("link", name="Password: Invalid email or password.").click()
    expect(page.get_by_label("Password")).to_be_focused()


def save_bad_custom_minutes(page: Page, base_url: str, *, javascript: bool = True) -> None:
    if javascript:
        visit(page, f"{base_url}/account/security")  # and its first status poll
    else:
        page.goto(f"{base_url}/account/security")
    page.get_by_role("radio", name=re.compile("^Custom")).check()
    page.get_by_label("Idle timeout (minutes)").fill("2")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#idle_minutes-error")).to_be_visible()


def test_choosing_a_preset_clears_the_stale_custom_errors(live_server, owner, page):
    sign_in(page, live_server.url)
    save_bad_custom_minutes(page, live_server.url)
    expect(page.locator("[data-error-summary]")).to_be_focused()  # htmx swap: focus lands on what went wrong
    page.get_by_role("radio", name=re.compile("^Strict")).check()
    expect(page.locator(".field--invalid, .field__error, [data-error-summary]")).to_have_count(0)
    idle = page.get_by_label("Idle timeout (minutes)")
    expect(idle).to_have_value("15")
    expect(idle).not_to_have_attribute("aria-invalid", "true")
    expect(idle).to_have_attribute("aria-describedby", "idle_minutes-hint")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#policy-card .notice--success")).to_have_text(
        "Saved Strict: signs out after 15 min idle, 8 hours at most."
    )


def test_without_javascript_a_preset_says_the_typed_minutes_were_not_saved(live_server, owner, new_context):
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    save_bad_custom_minutes(page, live_server.url, javascript=False)
    expect(page.locator("[data-error-summary]")).to_be_focused()
    page.get_by_role("radio", name=re.compile("^Standard")).check()
    page.get_by_label("Idle timeout (minutes)").fill("45")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice--success")).to_have_text(
        "Saved Standard: signs out after 30 min idle, 12 hours at most. "
        "The minutes entered for Custom were not saved; choose Custom to use them."
    )
    expect(page.get_by_label("Idle timeout (minutes)")).to_have_value("30")


def test_consent_names_the_apps_address_and_offers_another_account(live_server, owner, page):
    sign_in(page, live_server.url)
    page.goto(consent_url(live_server))
    card = page.locator("main")
    expect(card.locator(".consent__host")).to_have_text(re.sub(r"^http://", "", live_server.url))
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)  # no portal nav in the app's flow
    expect(card.get_by_role("link", name="Apps page")).to_have_attribute("href", "/account/apps")
    card.get_by_role("link", name="Not you? Switch account").click()
    page.get_by_label("Email").fill(factories.MEMBER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Allow Photo Prints to use your Gatehouse account?")).to_be_visible()
    expect(card).to_contain_text(f"Signed in as {factories.MEMBER_EMAIL}.")


def test_a_failed_password_change_starts_at_the_error_summary(live_server, owner, page):
    sign_in(page, live_server.url)
    visit(page, f"{live_server.url}/account")
    page.get_by_label("Current password", exact=True).fill("not the password")
    page.get_by_role("button", name="Change password").click()
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    summary.get_by_role("link").first.click()
    expect(page.locator("[aria-invalid=true]").first).to_be_focused()
