"""Changing one's e-mail address in Chromium (issue 12 item 3), as a person would in development: the form on
/account, the mail in the development mailbox, its link opened in another browser (with JavaScript on and off),
the one button, then signing in with the new address. axe-core clean at desktop and phone widths; a screenshot."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from app.accounts import services
from app.accounts.models import ROLE_MEMBER, Account
from app.extensions import db
from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import is_status_poll, sign_in, visit
from tests.e2e.test_accessibility import violations

NEW_EMAIL = "ada@new.example.test"
RUNS = {"desktop-js": (1280, True), "phone-js": (375, True), "desktop-no-js": (1280, False)}


def _link_from_the_mailbox(page: Page, base: str) -> str:
    """Open the newest confirmation mail at /dev/mail and return its link, on this server (ISSUER may name another)."""
    page.goto(f"{base}/dev/mail")
    page.get_by_role("link", name="Confirm your new Gatehouse e-mail address").first.click()
    text = page.locator("pre.mail-text").inner_text()
    links = [link for link in re.findall(r"https?://\S+", text) if "/account/email/confirm/" in link]
    assert len(links) == 1, text
    return base + urlsplit(links[0]).path


@pytest.mark.parametrize(("width", "javascript"), RUNS.values(), ids=RUNS.keys())
def test_the_new_address_is_confirmed_from_another_browser(live_server, owner, new_context, width, javascript):
    base = live_server.url
    viewport = {"width": width, "height": 800}
    page = new_context(viewport=viewport, bypass_csp=True).new_page()
    sign_in(page, base)
    visit(page, f"{base}/account")
    card = page.get_by_role("region", name="E-mail address")
    expect(card).to_contain_text(f"You sign in with {factories.OWNER_EMAIL}")
    card.get_by_label("New e-mail address").fill("not an address")
    card.get_by_role("button", name="Send the link").click()
    expect(card.locator(".field__error")).to_have_text("Enter a whole e-mail address, like name@example.com.")
    assert violations(page) == []
    card.get_by_label("New e-mail address").fill(NEW_EMAIL)
    card.get_by_role("button", name="Send the link").click()
    sent = f"We sent a link to {NEW_EMAIL}. Open it to confirm the change."
    expect(page.get_by_role("status").first).to_have_text(sent)
    expect(card).to_contain_text(f"Waiting for you to confirm {NEW_EMAIL}")
    assert violations(page) == []

    link = _link_from_the_mailbox(page, base)
    elsewhere = new_context(viewport=viewport, java_script_enabled=javascript, bypass_csp=True).new_page()
    elsewhere.goto(link)
    expect(elsewhere.get_by_role("heading", level=1)).to_have_text("Confirm your new e-mail address")
    expect(elsewhere.get_by_text("Change your e-mail from")).to_have_text(
        f"Change your e-mail from a***@example.test to {NEW_EMAIL}?"
    )
    if javascript:
        assert violations(elsewhere) == []
        if width == 1280:
            screenshot(elsewhere, "email-change-confirm.png")
    elsewhere.get_by_role("button", name="Change my e-mail address").click()
    expect(elsewhere.get_by_role("heading", level=1)).to_have_text("E-mail address changed")
    expect(elsewhere.get_by_role("status")).to_contain_text(f"You now sign in with {NEW_EMAIL}")
    if javascript:
        assert violations(elsewhere) == []

    elsewhere.goto(link)  # spent: the page offers to start again
    expect(elsewhere.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    expect(elsewhere.get_by_role("link", name="Start again")).to_have_attribute("href", "/account")
    if javascript:
        assert violations(elsewhere) == []

    page.goto(f"{base}/dev/mail")
    expect(page.get_by_role("link", name="Your Gatehouse e-mail address was changed")).to_have_count(1)
    fresh = new_context(viewport=viewport).new_page()
    sign_in(fresh, base, email=NEW_EMAIL)
    visit(fresh, f"{base}/account")
    expect(fresh.get_by_role("region", name="E-mail address")).to_contain_text(f"You sign in with {NEW_EMAIL}")


def test_an_old_sign_in_confirms_it_is_you_before_the_form(live_server, owner, new_context):
    base = live_server.url
    page = new_context(bypass_csp=True).new_page()
    sign_in(page, base)
    live_server.clock.advance(minutes=live_server.app.config["FRESH_AUTH_MINUTES"], seconds=1)
    visit(page, f"{base}/account")
    card = page.get_by_role("region", name="E-mail address")
    expect(card.get_by_label("New e-mail address")).to_have_count(0)
    assert violations(page) == []
    card.get_by_role("link", name="Change your e-mail address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    page.get_by_label("Password").fill(factories.PASSWORD)
    with page.expect_response(is_status_poll):
        page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{base}/account")
    expect(card.get_by_label("New e-mail address")).to_be_visible()


def test_an_address_taken_meanwhile_is_said_plainly(live_server, owner, new_context):
    base = live_server.url
    page = new_context(bypass_csp=True).new_page()
    sign_in(page, base)
    visit(page, f"{base}/account")
    page.get_by_label("New e-mail address").fill(NEW_EMAIL)
    page.get_by_role("button", name="Send the link").click()
    link = _link_from_the_mailbox(page, base)
    with live_server.app.app_context():
        account = db.session.get(Account, owner.account_id)
        services.create_user(
            account, NEW_EMAIL, "Someone Else", ROLE_MEMBER, factories.PASSWORD, live_server.clock.now()
        )
        db.session.commit()
    page.goto(link)
    page.get_by_role("button", name="Change my e-mail address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("That address is now taken")
    expect(page.get_by_text("nothing changed")).to_contain_text("you still sign in with a***@example.test")
    assert violations(page) == []
    page.get_by_role("link", name="Choose another address").click()
    expect(page.get_by_role("region", name="E-mail address")).to_contain_text(
        f"You sign in with {factories.OWNER_EMAIL}"
    )
