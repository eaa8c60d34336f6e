"""The new-device alert's "This wasn't me" link in Chromium (issue 12 item 4): opened in a browser that was never
signed in (a phone's mail app), it shows the sign-in and one button; confirming signs the intruder's browser out and
says a reset link is on its way. axe-core clean at desktop and phone widths; a screenshot for the README."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.mail.models import MailMessage
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import FIREFOX_ON_WINDOWS, expect_signed_out, sign_in
from tests.e2e.test_accessibility import violations

WIDTHS = {"desktop": 1280, "phone": 375}


def alert_path(live_server) -> str:
    with live_server.app.app_context():
        [body] = db.session.scalars(select(MailMessage.text_body).where(MailMessage.template == "new_device")).all()
    match = re.search(r"https?://[^/\s]+(/not-me/\S+)", body)
    assert match, body
    return match.group(1)


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_this_was_not_me_from_another_browser(live_server, owner, new_context, width):
    base = live_server.url
    sign_in(new_context().new_page(), base)  # the owner's own first sign-in: no alert
    live_server.clock.advance(hours=3)
    intruder = new_context(user_agent=FIREFOX_ON_WINDOWS).new_page()
    sign_in(intruder, base)  # the password, on a device the account never used: alerted

    phone = new_context(viewport={"width": width, "height": 800}, bypass_csp=True).new_page()
    phone.goto(base + alert_path(live_server))
    expect(phone.get_by_role("heading", level=1)).to_have_text("Was this you?")
    facts = phone.locator("dl.facts")
    expect(facts).to_contain_text("Firefox on Windows")
    expect(facts).to_contain_text("127.0.0.1")
    expect(facts).to_contain_text("Mon 05 Jan 2026, 12:00 UTC")
    button = phone.get_by_role("button", name="Sign out that device and reset my password")
    expect(button).to_have_count(1)
    assert violations(phone) == []
    if width == WIDTHS["desktop"]:
        screenshot(phone, "new-device-not-me.png")

    button.click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Device signed out")
    expect(phone.get_by_role("status")).to_have_text(
        "We signed out Firefox on Windows and its apps, and sent a link to set a new password to a•••@example.test."
    )
    assert violations(phone) == []
    if width == WIDTHS["desktop"]:
        screenshot(phone, "new-device-not-me-done.png")
    expect_signed_out(intruder, "signed_out_elsewhere")
