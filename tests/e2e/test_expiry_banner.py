"""The expiry banner in a real browser: the idle warning with "Stay signed in", dismissal, the absolute notice.

The server's time is the shared FrozenClock. Loading a page is activity (it slides the idle window), so the
idle warning is what an open, untouched tab sees: the server clock moves, then the page's own 30 s poll
(run with Playwright's fake browser timers, never a sleep) fetches the status that is not activity.
"""

import re

from playwright.sync_api import Page, expect

from app.accounts.models import Account
from app.extensions import db
from app.web.sign_out_reasons import NOTICES
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import is_status_poll, reload, sign_in

POLL_MILLISECONDS = 30_000
DISMISSED_KEY = "gatehouse.dismissed-expiry"


def idle_notice(page: Page):
    return page.locator(".expiry-banner__notice[data-kind='idle']")


def absolute_notice(page: Page):
    return page.locator(".expiry-banner__notice[data-kind='absolute']")


def run_next_poll(page: Page) -> dict:
    """Fire the page's status poll timer and return the status it received."""
    with page.expect_response(is_status_poll) as response:
        page.clock.run_for(POLL_MILLISECONDS)
    return response.value.json()


def status(page: Page, base_url: str) -> dict:
    """GET /session/status with the page's cookies (passive: not activity)."""
    response = page.request.get(f"{base_url}/session/status")
    assert response.ok, response.status
    return response.json()


def test_idle_warning_stay_signed_in_and_dismiss(live_server, owner, new_context):
    context = new_context()
    context.clock.install()
    page = context.new_page()
    sign_in(page, live_server.url)
    expect(idle_notice(page)).to_be_hidden()

    live_server.clock.advance(minutes=26)  # 4 minutes before the 30 minute idle expiry
    assert run_next_poll(page)["idle_seconds_left"] == 4 * 60

    notice = idle_notice(page)
    expect(notice).to_be_visible()
    expect(notice).to_have_class("notice notice--warning expiry-banner__notice")
    expect(notice).to_contain_text("You will be signed out in 4 min because you have been inactive.")
    expect(notice).to_have_attribute("role", "alert")
    expect(absolute_notice(page)).to_be_hidden()
    screenshot(page, "expiry-banner-idle.png")

    notice.get_by_role("button", name="Stay signed in").click()
    expect(notice).to_be_hidden()
    after = status(page, live_server.url)
    assert after["idle_seconds_left"] == 30 * 60
    assert after["absolute_seconds_left"] == 12 * 60 * 60 - 26 * 60

    # The warning comes back for the next expiry; Dismiss hides it for that expiry only.
    live_server.clock.advance(minutes=26)
    run_next_poll(page)
    expect(notice).to_be_visible()
    notice.get_by_role("button", name="Dismiss").click()
    expect(notice).to_be_hidden()
    dismissed = page.evaluate(f"sessionStorage.getItem('{DISMISSED_KEY}')")
    assert dismissed == f"idle:{status(page, live_server.url)['idle_expires_at']}"
    assert run_next_poll(page)["idle_seconds_left"] == 4 * 60  # the next poll: the same expiry...
    page.clock.run_for(2_000)  # ...and a few of the once-a-second renders
    expect(page.locator("#expiry-banner")).to_have_attribute("data-expiry", dismissed)
    expect(notice).to_be_hidden()

    # A page load is activity: a new idle expiry, nothing to warn about now...
    reload(page)
    after = status(page, live_server.url)
    assert after["idle_seconds_left"] == 30 * 60
    expect(page.locator("#expiry-banner")).to_have_attribute("data-expiry", f"idle:{after['idle_expires_at']}")
    expect(notice).to_be_hidden()
    # ...and when that one draws near, the warning shows again: the dismissal was for the old expiry.
    live_server.clock.advance(minutes=26)
    run_next_poll(page)
    expect(notice).to_be_visible()


def test_absolute_expiry_notice_cannot_be_extended(live_server, owner, new_context):
    with live_server.app.app_context():
        account = db.session.get(Account, owner.account_id)
        account.idle_minutes, account.absolute_minutes = 60, 60
        db.session.commit()
    page = new_context().new_page()
    sign_in(page, live_server.url)

    live_server.clock.advance(minutes=56)  # idle and absolute both 4 minutes away: absolute wins
    reload(page)

    notice = absolute_notice(page)
    expect(notice).to_be_visible()
    expect(notice).to_have_class("notice notice--info expiry-banner__notice")
    expect(notice).to_contain_text("Your session ends in 4 min and cannot be extended.")
    sign_in_now = notice.get_by_role("link", name="Sign in now")
    expect(sign_in_now).to_have_attribute("href", "/login?next=/")
    expect(page.get_by_role("button", name="Stay signed in")).to_have_count(0)  # hidden, so not in the a11y tree
    expect(idle_notice(page)).to_be_hidden()
    screenshot(page, "expiry-banner-absolute.png")

    # Dismissed, it stays hidden after a reload: the absolute expiry does not move.
    notice.get_by_role("button", name="Dismiss").click()
    expect(notice).to_be_hidden()
    expiry = page.locator("#expiry-banner").get_attribute("data-expiry")
    reload(page)
    expect(page.locator("#expiry-banner")).to_have_attribute("data-expiry", expiry)  # rendered the same expiry
    expect(notice).to_be_hidden()
    expect(idle_notice(page)).to_be_hidden()


def test_an_open_page_signed_out_from_another_device_says_so(live_server, owner, new_context):
    """The banner's poll is what an untouched tab hears first: it carries the reason to the sign-in page."""
    context = new_context()
    context.clock.install()
    page = context.new_page()
    sign_in(page, live_server.url)
    other = new_context().new_page()
    sign_in(other, live_server.url)
    reload(other)
    with other.expect_response(lambda response: response.request.method == "POST"):
        other.goto(f"{live_server.url}/account/devices/sign-out-others")
        other.get_by_role("button", name="Sign out other devices").click()
    page.clock.run_for(POLL_MILLISECONDS)
    expect(page).to_have_url(re.compile(r"/login\?reason=signed_out_elsewhere(&|$)"))
    expect(page.locator(".notice--info")).to_have_text(NOTICES["signed_out_elsewhere"])
