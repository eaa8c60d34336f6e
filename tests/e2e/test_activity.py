"""The security activity pages in Chromium (issue 12 item 5): a person's own events from the home page, the owner's
audit log from the security page, filtered; axe-core clean; screenshots at desktop and phone widths."""

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import sign_in, visit
from tests.e2e.test_accessibility import violations

WIDTHS = {"desktop": 1280, "phone": 375}


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_own_activity_and_the_owner_log_render_clean(live_server, owner, new_context, width):
    base = live_server.url
    member = new_context(viewport={"width": width, "height": 800}).new_page()
    sign_in(member, base, email=factories.MEMBER_EMAIL)
    member.goto(f"{base}/account/security/activity")
    expect(member.get_by_role("heading", level=1)).not_to_have_text("Account audit log")  # owners only

    page = new_context(viewport={"width": width, "height": 800}, bypass_csp=True).new_page()
    sign_in(page, base)
    with page.expect_response(lambda response: response.url.endswith("/account/activity")):
        page.get_by_role("link", name="See recent security activity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Recent security activity")
    first = page.locator(".activity__item").first
    expect(first).to_contain_text("Signed in on")
    expect(first).to_contain_text("with a password")
    expect(first.locator("time")).to_have_attribute("title", "Mon 05 Jan 2026, 09:00 UTC")
    assert violations(page) == []
    screenshot(page, f"activity-{width}.png")

    visit(page, f"{base}/account/security")
    page.get_by_role("link", name="account's audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Account audit log")
    expect(page.get_by_text("Grace Hopper: Signed in on")).to_be_visible()
    page.get_by_label("Person").select_option(label="Ada Lovelace")
    page.get_by_label("Kind").select_option(label="Sign-ins and sign-outs")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("Grace Hopper:")).to_have_count(0)
    expect(page.get_by_text("Ada Lovelace: Signed in on").first).to_be_visible()
    assert violations(page) == []
    screenshot(page, f"account-activity-{width}.png")
