"""Shared steps for the browser tests: signing in, loading a signed-in page, several devices at once.

Every signed-in page polls /session/status once as soon as it loads (static/js/app.js). The helpers wait for
that first poll, so a test that then moves the server clock never races a poll still in flight (a late poll
past the expiry would end the session and navigate the page by itself).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Response, expect

from app.sessions.devices import device_name
from app.web.sign_out_reasons import NOTICES
from tests import factories

STATUS_PATH = "/session/status"
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_ON_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
EXPIRED = re.compile(r"/login\?reason=session_expired(&|$)")
EXPIRED_NOTICE = "Your session expired. Please sign in again."
ELSEWHERE, BY_OWNER = "signed_out_elsewhere", "signed_out_by_owner"


def is_status_poll(response: Response) -> bool:
    return urlsplit(response.url).path == STATUS_PATH


def sign_in(page: Page, base_url: str, email: str = factories.OWNER_EMAIL, password: str = factories.PASSWORD) -> None:
    """Sign in through the form and wait for the home page and its first status poll."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_response(is_status_poll):
        page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/")


def visit(page: Page, url: str) -> None:
    """Open a signed-in page and wait for its first status poll."""
    with page.expect_response(is_status_poll):
        page.goto(url)


def reload(page: Page) -> None:
    """Reload a signed-in page and wait for its first status poll."""
    with page.expect_response(is_status_poll):
        page.reload()


def expect_signed_out(page: Page, reason: str) -> None:
    """The next navigation of a device whose session was ended lands on the sign-in page saying why."""
    page.reload()
    expect(page).to_have_url(re.compile(rf"/login\?reason={reason}(&|$)"))
    expect(page.locator(".notice--info")).to_have_text(NOTICES[reason])
    expect(page.get_by_role("heading", name="Sign in to Gatehouse")).to_be_visible()


def dialog_labels(page: Page) -> dict[str, list[str] | None]:
    """Every <dialog> by id: the text of the title its aria-labelledby names and of its aria-describedby body.

    None for a dialog whose references are missing, point outside it, or whose title is not a heading.
    """
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("dialog")].map(dialog => {
            const title = document.getElementById(dialog.getAttribute("aria-labelledby"));
            const body = document.getElementById(dialog.getAttribute("aria-describedby"));
            const ok = title && body && dialog.contains(title) && dialog.contains(body)
                && /^H[1-6]$/.test(title.tagName);
            return [dialog.id, ok ? [title.textContent.trim(), body.textContent.trim()] : null];
        }))"""
    )


@dataclass(frozen=True)
class Devices:
    firefox: Page
    safari: Page
    chromium: Page
    chromium_name: str


def sign_in_on_three_devices(live_server, new_context: Callable[..., BrowserContext]) -> Devices:
    """The owner on Firefox/Windows, then Safari/iOS two minutes later, then this Chromium two minutes later."""
    firefox = new_context(user_agent=FIREFOX_ON_WINDOWS).new_page()
    sign_in(firefox, live_server.url)
    live_server.clock.advance(minutes=2)
    safari = new_context(user_agent=SAFARI_ON_IOS).new_page()
    sign_in(safari, live_server.url)
    live_server.clock.advance(minutes=2)
    chromium = new_context().new_page()
    sign_in(chromium, live_server.url)
    name = device_name(chromium.evaluate("navigator.userAgent"))
    assert name not in ("Unknown device", "Firefox on Windows", "Mobile Safari on iOS")
    return Devices(firefox, safari, chromium, name)
