"""Passkeys on /account/two-step in Chromium (issue 11 item 3): a passkey made by the DevTools virtual authenticator
(CTAP2, internal transport, resident keys, user verification) through the real page and static/js/passkeys.js,
then renamed and removed. The portal is served on localhost, as `make run` serves it: WebAuthn refuses IP addresses."""

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from app.sessions.devices import device_name
from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import sign_in, visit
from tests.relying_party.conftest import app, portal  # noqa: F401 (fixtures: a live portal on localhost)

PAGE = "/account/two-step"


def virtual_authenticator(context: BrowserContext, page: Page):
    """A platform authenticator with resident keys that verifies the user; returns the DevTools session and its id."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
               "isUserVerified": True, "automaticPresenceSimulation": True}  # fmt: skip
    return cdp, cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]


@pytest.fixture
def signed_in_page(portal, owner, context) -> Page:  # noqa: F811
    page = context.new_page()
    sign_in(page, portal.url)
    visit(page, f"{portal.url}{PAGE}")
    return page


# Browsers before WebAuthn Level 3's JSON helpers (Safari < 18.4, Firefox < 119): the script encodes by hand.
WITHOUT_JSON_HELPERS = (
    "delete PublicKeyCredential.parseCreationOptionsFromJSON; delete PublicKeyCredential.prototype.toJSON;"
)


@pytest.mark.parametrize("json_helpers", [True, False], ids=["json-helpers", "by-hand"])
def test_add_rename_and_remove_a_passkey(portal, context, signed_in_page, json_helpers):  # noqa: F811
    page = signed_in_page
    if not json_helpers:
        context.add_init_script(WITHOUT_JSON_HELPERS)
        visit(page, f"{portal.url}{PAGE}")
        assert page.evaluate("typeof PublicKeyCredential.prototype.toJSON") == "undefined"
    cdp, authenticator_id = virtual_authenticator(context, page)
    section = page.locator("#passkeys")
    expect(section.get_by_text("needs JavaScript and a browser that supports passkeys")).to_be_hidden()

    section.get_by_role("button", name="Add a passkey").click()
    # The first second factor brings recovery codes, shown once in the section.
    expect(section.get_by_role("heading", name="Save your recovery codes")).to_be_focused()
    expect(section.locator("[data-passkey-codes-list] code")).to_have_count(10)
    [held] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert held["isResidentCredential"] is True and held["rpId"] == "localhost"
    name = device_name(page.evaluate("navigator.userAgent"))
    expect(section.get_by_role("status")).to_have_text(f"Passkey “{name}” added.")
    screenshot(page, "two-step-passkey-codes.png")

    section.get_by_role("link", name="I have saved them").click()
    expect(page.locator(".notice--success")).to_have_text(f"Passkey “{name}” added. You can rename it below.")
    expect(section.get_by_role("heading", name=name, level=3)).to_be_visible()
    expect(section.locator(".device__facts")).to_contain_text(re.compile(r"Added\s*just now\s*Last used\s*Never"))

    # The same authenticator cannot make a second passkey for this account (excludeCredentials).
    section.get_by_role("button", name="Add a passkey").click()
    expect(section.locator("[data-passkey-status]")).to_have_text(
        "This device or password manager already holds a passkey for your account."
    )
    expect(section.get_by_role("button", name="Add a passkey")).to_be_enabled()

    section.get_by_text("Rename", exact=True).click()
    section.get_by_label("New name").fill("Work laptop")
    section.get_by_role("button", name="Save name").click()
    expect(page.locator(".notice--success")).to_have_text("Passkey renamed to “Work laptop”.")
    expect(section.get_by_role("heading", name="Work laptop", level=3)).to_be_visible()
    screenshot(page, "two-step-passkeys.png")

    section.get_by_role("link", name="Remove Work laptop").click()
    dialog = page.get_by_role("dialog", name="Remove Work laptop?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Remove passkey").click()
    expect(page.locator(".notice--success")).to_contain_text("Passkey removed.")
    expect(section.get_by_role("heading", level=3)).to_have_count(0)


def test_without_javascript_the_button_says_what_it_needs(portal, owner, new_context):  # noqa: F811
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{portal.url}/login")
    page.get_by_label("Email").fill(factories.OWNER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{portal.url}{PAGE}")
    button = page.get_by_role("button", name="Add a passkey")
    expect(button).to_be_disabled()
    expect(button).to_have_accessible_description(
        "Adding a passkey needs JavaScript and a browser that supports passkeys."
    )
