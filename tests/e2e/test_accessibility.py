"""axe-core on every portal page, at desktop and phone widths (issue 9: "axe clean", WCAG 2.2 A/AA rules).

axe-core is vendored (tests/e2e/vendor/, MPL-2.0) so that `make test` needs no npm and no network on a fresh machine.
The pages' CSP forbids injected scripts, so the scanning browser context bypasses CSP; nothing else changes.
"""

from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from app.accounts.models import User
from app.extensions import db
from app.oauth.clients import register_client
from tests import factories
from tests.e2e.conftest import screenshot
from tests.e2e.helpers import sign_in, visit
from tests.factors.conftest import enrolled
from tests.helpers import sessions_of

AXE = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"
WIDTHS = {"desktop": 1280, "phone": 375}
# WCAG 2.x A and AA, plus axe's best practices (landmarks, one h1, ...): what the review scanned with.
AXE_RUN = """async () => {
    const result = await axe.run(document, {
        runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
        resultTypes: ["violations"],
    });
    return result.violations.map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`);
}"""
PKCE_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B


def violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(AXE_RUN)


def scan(page: Page, url: str, found: dict[str, list[str]], *, signed_in: bool = True) -> None:
    if signed_in:
        visit(page, url)
    else:
        page.goto(url)
    problems = violations(page)
    if problems:
        found[page.url] = problems


def consent_url(live_server) -> str:
    """An authorization request from an app that is not first-party, so the consent page is shown."""
    with live_server.app.app_context():
        registered = register_client("Photo Prints", [f"{live_server.url}/prints/callback"], live_server.clock.now())
        db.session.commit()
        client_id = registered.client.client_id
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": f"{live_server.url}/prints/callback",
             "scope": "openid profile email", "state": "s", "nonce": "n", "code_challenge": PKCE_CHALLENGE,
             "code_challenge_method": "S256"}  # fmt: skip
    return f"{live_server.url}/oauth/authorize?{urlencode(query)}"


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_every_portal_page_is_axe_clean(live_server, owner, new_context, width):
    viewport = {"width": width, "height": 800}
    base, found = live_server.url, {}

    anonymous = new_context(viewport=viewport, bypass_csp=True).new_page()
    scan(anonymous, f"{base}/login", found, signed_in=False)
    scan(anonymous, f"{base}/login?reason=signed_out_elsewhere", found, signed_in=False)
    anonymous.get_by_label("Email").fill(factories.OWNER_EMAIL)
    anonymous.get_by_label("Password").fill("not the password")
    anonymous.get_by_role("button", name="Sign in", exact=True).click()
    expect(anonymous.locator("[data-error-summary]")).to_be_visible()
    scan_current(anonymous, found)
    scan_second_step(live_server, owner.member_id, anonymous, found)
    scan(anonymous, f"{base}/invitation/ghi_no-such-link", found, signed_in=False)

    other_device = new_context(viewport=viewport).new_page()
    sign_in(other_device, base)
    page = new_context(viewport=viewport, bypass_csp=True).new_page()
    sign_in(page, base)
    other = sessions_of(live_server.app, owner.owner_id)[0]
    for path in ("/", "/account/devices", "/account/apps", "/account", "/account/two-step", "/account/security",
                 "/account/activity", "/account/security/activity", "/account/security/activity?kind=nothing",
                 f"/account/devices/{other.public_id}/sign-out", "/account/devices/sign-out-others",
                 "/account/security/revoke/others", "/account/security/revoke/all", "/no-such-page",
                 "/account/people", *(f"/account/people/{owner.member_id}/{action}"
                                      for action in ("sign-out", "disable", "remove"))):  # fmt: skip
        scan(page, base + path, found)

    page.goto(consent_url(live_server))
    expect(page.get_by_role("heading", name="Allow Photo Prints to use your Gatehouse account?")).to_be_visible()
    scan_current(page, found)
    if width == WIDTHS["desktop"]:
        screenshot(page, "consent.png")
    page.get_by_role("button", name="Allow").click()  # back to the app's (missing) callback: a 404 page here
    scan(page, f"{base}/account/apps", found)

    visit(page, f"{base}/account/security/revoke/all")
    page.get_by_role("button", name="Sign out everyone").click()
    expect(page.get_by_role("heading", name="Everyone is signed out")).to_be_visible()
    scan_current(page, found)
    assert found == {}


def scan_second_step(live_server, user_id: int, page: Page, found: dict[str, list[str]]) -> None:
    """/login/verify as asked and after a wrong code: the user has an authenticator app (set up two steps ago)."""
    with live_server.app.app_context():
        enrolled(db.session.get(User, user_id), live_server.clock.now())
    page.get_by_label("Email").fill(factories.MEMBER_EMAIL)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/login/verify")
    scan_current(page, found)
    page.get_by_label("Code", exact=True).fill("not a code")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("[data-error-summary]")).to_be_visible()
    scan_current(page, found)


def scan_current(page: Page, found: dict[str, list[str]]) -> None:
    problems = violations(page)
    if problems:
        found[page.url + " (as shown)"] = problems
