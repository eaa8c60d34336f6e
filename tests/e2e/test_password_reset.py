"""A forgotten password in Chromium (issue 12 item 2), as a person would go through it in development: the link on
the sign-in page, the development mailbox, the link, the new password, signing in with it; the spent link then shows
the page that offers a new one. With JavaScript on and off, axe-core clean, screenshots at desktop and phone widths."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import sign_in
from tests.e2e.test_accessibility import violations

NEW_PASSWORD = "a brand new passphrase for Ada"
WIDTHS = {"desktop": 1280, "phone": 375}


def _link_from_the_mailbox(page: Page, base: str) -> str:
    """Open the newest mail at /dev/mail and return its reset link, on this server (ISSUER may name another)."""
    page.goto(f"{base}/dev/mail")
    page.get_by_role("link", name="Choose a new Gatehouse password").first.click()
    text = page.locator("pre.mail-text").inner_text()
    links = re.findall(r"https?://\S+/reset-password/\S+", text)
    assert len(links) == 1, text
    return base + urlsplit(links[0]).path


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_forgotten_password_is_replaced_through_the_mailed_link(live_server, owner, new_context, width, javascript):
    base = live_server.url
    page = new_context(viewport={"width": width, "height": 800}, java_script_enabled=javascript,
                       bypass_csp=True).new_page()  # fmt: skip
    page.goto(f"{base}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgotten password")
    if javascript:
        assert violations(page) == []
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your e-mail")
    expect(page.get_by_role("status")).to_contain_text(factories.OWNER_EMAIL)
    if javascript:
        assert violations(page) == []
        screenshot(page, f"forgot-password-sent-{width}.png")

    link = _link_from_the_mailbox(page, base)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill("not the same")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_text("The two entries differ.").first).to_be_visible()
    if javascript:
        assert violations(page) == []
        screenshot(page, f"reset-password-{width}.png")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Password changed, sign in")
    if javascript:
        assert violations(page) == []

    page.goto(link)  # spent: the page offers a new link instead
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    if javascript:
        assert violations(page) == []
    page.get_by_role("link", name="Send a new link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgotten password")

    if javascript:
        sign_in(page, base, password=NEW_PASSWORD)
    else:
        page.goto(f"{base}/login")
        page.get_by_label("Email").fill(factories.OWNER_EMAIL)
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{base}/")
