"""The account's people in Chromium (issue 12 item 6), as an owner and a newcomer go through it in development: the
owner invites an address from the home page's People card, the mail is read at /dev/mail, the link is opened in a
browser of its own, a name and a password are chosen and the newcomer is signed in; the owner's page then lists
them, and its confirmation dialog asks before disabling. With JavaScript on and off; axe-core clean at desktop and
phone widths; screenshots."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import dialog_labels
from tests.e2e.test_accessibility import violations

WIDTHS = {"desktop": 1280, "phone": 375}
NEWCOMER, NAME, PASSWORD = "lin@example.test", "Lin Qiao", "a passphrase of lin's own"


def sign_in(page: Page, base: str) -> None:
    """Through the form, with or without JavaScript (the helpers' sign_in waits for a status poll only JS makes)."""
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base}/")


def link_from_the_mailbox(page: Page, base: str) -> str:
    """The newest invitation's link at /dev/mail, on this server (ISSUER may name another)."""
    page.goto(f"{base}/dev/mail")
    page.get_by_role("link", name="Ada Lovelace invited you to Example on Gatehouse").first.click()
    links = re.findall(r"https?://\S+/invitation/\S+", page.locator("pre.mail-text").inner_text())
    assert len(links) == 1, links
    return base + urlsplit(links[0]).path


def suffix(width: int) -> str:
    return "" if width == WIDTHS["desktop"] else "-mobile"


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_owner_invites_and_the_newcomer_joins(live_server, owner, new_context, width, javascript):
    base, viewport = live_server.url, {"width": width, "height": 800}
    shots = javascript  # axe runs in the page (JavaScript); the JavaScript-off run proves the forms alone suffice
    page = new_context(viewport=viewport, java_script_enabled=javascript, bypass_csp=True).new_page()
    sign_in(page, base)
    page.get_by_role("link", name="Manage people").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    page.get_by_label("E-mail address").fill(NEWCOMER)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {NEWCOMER}")
    pending = page.locator(".member", has_text=NEWCOMER)
    expect(pending).to_contain_text("Queued")
    expect(pending.get_by_role("button", name=f"Resend the invitation to {NEWCOMER}")).to_be_visible()
    if shots:
        assert violations(page) == []

    newcomer = new_context(viewport=viewport, java_script_enabled=javascript, bypass_csp=True).new_page()
    link = link_from_the_mailbox(page, base)
    newcomer.goto(link)
    expect(newcomer.get_by_role("heading", level=1)).to_have_text("Join Example as a member")
    expect(newcomer.get_by_label("E-mail address")).to_have_value(NEWCOMER)
    expect(newcomer.get_by_label("E-mail address")).not_to_be_editable()
    if shots:
        assert violations(newcomer) == []
        screenshot(newcomer, f"invitation-accept{suffix(width)}.png")
    newcomer.get_by_label("Your name").fill(NAME)
    newcomer.get_by_label("Choose a password").fill(PASSWORD)
    newcomer.get_by_label("Repeat the password").fill("not the same")
    newcomer.get_by_role("button", name="Join Example").click()
    expect(newcomer.get_by_text("The two entries differ.").first).to_be_visible()
    expect(newcomer.get_by_label("Your name")).to_have_value(NAME)  # the input is kept
    if shots:
        assert violations(newcomer) == []
    newcomer.get_by_label("Choose a password").fill(PASSWORD)
    newcomer.get_by_label("Repeat the password").fill(PASSWORD)
    newcomer.get_by_role("button", name="Join Example").click()
    expect(newcomer).to_have_url(f"{base}/")
    expect(newcomer.get_by_role("heading", level=1)).to_have_text(f"Welcome, {NAME}")

    newcomer.goto(link)  # spent: the page says so and how to go on
    expect(newcomer.get_by_role("heading", level=1)).to_have_text("This invitation link no longer works")
    if shots:
        assert violations(newcomer) == []

    page.goto(f"{base}/account/people")
    joined = page.locator(".member", has_text=NAME)
    expect(joined).to_contain_text(NEWCOMER)
    expect(joined).to_contain_text("1 signed in")
    expect(page.get_by_role("heading", name="Pending invitations")).to_have_count(0)
    page.get_by_label("E-mail address").fill("sam@example.test")  # another, as an owner: pending on the page
    page.get_by_label("Owner").check()
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".member", has_text="sam@example.test")).to_contain_text("Owner")
    joined = page.locator(".member", has_text=NAME)
    disable = joined.get_by_role("link", name=f"Disable: {NAME}")
    disable.click()
    if javascript:
        dialog = page.get_by_role("dialog", name=f"Disable {NAME}?")
        expect(dialog).to_be_visible()
        assert all(labels is not None for labels in dialog_labels(page).values())
        assert violations(page) == []
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        expect(disable).to_be_focused()
        screenshot(page, f"people{suffix(width)}.png")
        disable.click()
        dialog.get_by_role("button", name="Disable").click()
    else:
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Disable {NAME}?")
        page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text(f"{NAME} is disabled")
    expect(page.locator(".member", has_text=NAME)).to_contain_text("Disabled")
    newcomer.goto(f"{base}/")  # disabled: signed out
    expect(newcomer).to_have_url(re.compile(r"/login"))
    for browser in (page, newcomer):  # nothing in flight when the contexts close (the server would warn)
        browser.wait_for_load_state("networkidle")
