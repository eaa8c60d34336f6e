"""Sign in, sign out and idle expiry in a real browser: what the user sees, the cookie the browser keeps."""

import re

from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import MOBILE, screenshot
from tests.e2e.helpers import is_status_poll

SESSION_COOKIE = "gh_session"


def sign_in(page: Page, base_url: str, email: str = factories.OWNER_EMAIL, password: str = factories.PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_sign_in_lands_on_home_with_an_http_only_cookie(live_server, owner, context, page):
    page.goto(f"{live_server.url}/login")
    expect(page.get_by_role("heading", name="Sign in to Gatehouse")).to_be_visible()
    screenshot(page, "login.png")

    sign_in(page, live_server.url)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada Lovelace")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(page, "home.png")

    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    assert SESSION_COOKIE in cookies
    assert cookies[SESSION_COOKIE]["httpOnly"] is True
    assert cookies[SESSION_COOKIE]["sameSite"] == "Lax"
    assert SESSION_COOKIE not in page.evaluate("document.cookie")


def test_sign_out_from_the_header_ends_the_session(live_server, owner, page):
    sign_in(page, live_server.url)
    expect(page).to_have_url(f"{live_server.url}/")

    page.get_by_role("banner").get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.locator(".notice--success")).to_have_text("You have signed out.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in to Gatehouse")).to_be_visible()
    expect(page.locator(".notice")).to_have_count(0)


def test_idle_session_expires_and_says_so(live_server, owner, page):
    # Wait for the home page's first status poll: one still in flight when the clock moves would end the
    # session itself and send the page to /login?reason=session_expired without next=/.
    with page.expect_response(is_status_poll):
        sign_in(page, live_server.url)
    expect(page).to_have_url(f"{live_server.url}/")

    live_server.clock.advance(minutes=31)  # default idle timeout: 30 minutes
    page.reload()

    expect(page).to_have_url(re.compile(r"/login\?reason=session_expired&next=/$"))
    notice = page.locator(".notice--info")
    expect(notice).to_have_text("Your session expired. Please sign in again.")
    expect(notice).to_have_attribute("role", "status")
    screenshot(page, "login-session-expired.png")

    # Signing in again goes back where the user was.
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada Lovelace")


def test_wrong_password_shows_the_error_by_the_password_field(live_server, owner, context, page):
    sign_in(page, live_server.url, password="not the password")

    expect(page).to_have_url(f"{live_server.url}/login")
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_attribute("aria-describedby", "password-error")
    expect(password).to_have_value("")
    error = page.locator("#password-error")
    expect(error).to_have_text("Invalid email or password.")
    expect(page.locator(".field--invalid")).to_have_count(1)
    expect(page.locator(".field--invalid").locator("#password-error")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(factories.OWNER_EMAIL)
    # The email is kept; focus starts at the error summary, whose link leads to the password field.
    expect(page.locator("[data-error-summary]")).to_be_focused()
    assert SESSION_COOKIE not in {cookie["name"] for cookie in context.cookies()}
    screenshot(page, "login-error.png")


def test_sign_in_and_out_work_without_javascript(live_server, owner, new_context):
    page = new_context(java_script_enabled=False).new_page()

    sign_in(page, live_server.url)
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada Lovelace")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.locator(".notice--success")).to_have_text("You have signed out.")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))


def test_login_page_fits_a_phone(live_server, new_context):
    page = new_context(viewport=MOBILE, is_mobile=True, has_touch=True).new_page()
    page.goto(f"{live_server.url}/login")

    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow == 0, "the login page scrolls sideways on a 360 px wide screen"
    screenshot(page, "login-mobile.png")
