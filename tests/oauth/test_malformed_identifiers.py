"""DESIGN §8: identifiers are checked for shape and length at the edge; a malformed one (NUL, overlong, non-ASCII,
control characters) gets exactly the answer an unknown one gets, on SQLite and on PostgreSQL (where a NUL byte
reaching a query is a psycopg DataError, i.e. a 500)."""

import base64
import re
from urllib.parse import quote

import pytest

from tests.conftest import Auth, csrf_token_from
from tests.oauth.conftest import REDIRECT_URI, Flow, pkce, query_of

UNKNOWN_CLIENT_ID = "gh_NeverRegistered"
UNKNOWN_PUBLIC_ID = "x" * 43
MALFORMED = {
    "nul": "gh_abc\x00def",
    "overlong": "gh_" + "a" * 5000,
    "non_ascii": "gh_ábcdéf",
    "newline": "gh_abc\r\nSet-Cookie: x=1",
    "trailing_newline": "gh_abcdef\n",
    "tab": "gh_abc\tdef",
    "delete": "gh_abc\x7fdef",
    "space": "gh_abc def",
    "empty_after_percent": "%",
}
MAIN = re.compile(r"<main.*</main>", re.DOTALL)


def page(response) -> tuple[int, str]:
    """The status and the page's main content (the chrome around it carries the path and a CSRF token)."""
    return response.status_code, MAIN.search(response.text).group(0)


def answer(response) -> tuple[int, object, str | None]:
    return response.status_code, response.json, response.headers.get("WWW-Authenticate")


def basic(client_id: str, secret: str | None = None) -> dict:
    raw = f"{client_id}:{secret or 'ghs_whatever'}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_authorize_with_a_malformed_client_id_is_the_unknown_client_page(app, client, owner, bad):
    def ask(client_id):
        _, challenge = pkce()
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": "openid",
                 "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
        return page(client.get("/oauth/authorize", query_string=query))

    assert ask(bad) == ask(UNKNOWN_CLIENT_ID)
    assert ask(bad)[0] == 400


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_client_endpoints_answer_a_malformed_client_id_as_an_unknown_one(app, owner, path, bad):
    client = app.test_client()
    form = {"grant_type": "client_credentials", "token": "ghr_x"}

    def posted(client_id):
        return answer(client.post(path, data=form | {"client_id": client_id, "client_secret": "ghs_x"}))

    def in_basic(client_id):
        return answer(client.post(path, data=form, headers=basic(client_id)))

    assert posted(bad) == posted(UNKNOWN_CLIENT_ID)
    assert in_basic(bad) == in_basic(UNKNOWN_CLIENT_ID)
    assert posted(bad)[0] == in_basic(bad)[0] == 401


@pytest.mark.parametrize("path", ["/internal/grants/verify", "/internal/devices/check"])
@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_internal_endpoints_answer_a_malformed_client_id_as_an_unknown_one(app, owner, path, bad):
    client = app.test_client()

    def ask(client_id):
        return answer(client.post(path, json={"grant": "ghg_x", "device_id": "d"}, headers=basic(client_id)))

    assert ask(bad) == ask(UNKNOWN_CLIENT_ID)
    assert ask(bad)[0] == 401


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_grant_and_device_checks_treat_a_malformed_value_as_a_bad_request(app, owner, make_client, bad):
    rp = make_client()
    client = app.test_client()
    headers = basic(rp.client_id, rp.secret)
    verify = client.post("/internal/grants/verify", json={"grant": "ghg_" + bad}, headers=headers)
    if verify.status_code == 200:
        assert verify.json == {"active": False, "reason": "unknown"}
    else:  # 413: the overlong one is over the body limit
        assert verify.status_code in (400, 413) and verify.json["error"] in ("invalid_request", "request_too_large")
    check = client.post("/internal/devices/check", json={"device_id": bad}, headers=headers)
    assert check.status_code in (400, 413) and check.json["error"] in ("invalid_request", "request_too_large")


@pytest.mark.parametrize("parameter", ["device_id", "nonce"])
@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "\x7f", "a\x1bb"], ids=["nul", "newline", "delete", "escape"])
def test_authorize_refuses_control_characters_in_what_it_stores(app, owner, rp, parameter, bad):
    flow = Flow(app, rp).sign_in()
    _, challenge = pkce()
    response = flow.authorize(challenge, **{parameter: bad})
    assert response.status_code == 302, response.status_code
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def owner_browser(app):
    browser = app.test_client()
    Auth(browser).login()
    return browser


@pytest.mark.parametrize(
    "template", ["/account/devices/{}/sign-out", "/account/apps/grants/{}/disconnect", "/account/apps/{}/disconnect"]
)
@pytest.mark.parametrize("bad", [*MALFORMED.values(), "x" * 65], ids=[*MALFORMED.keys(), "one_too_long"])
def test_path_ids_on_the_devices_and_apps_pages_read_as_unknown(app, owner, template, bad):
    browser = owner_browser(app)
    token = csrf_token_from(browser.get("/account/devices").text)

    def both(identifier):
        url = template.format(quote(identifier, safe=""))
        return page(browser.get(url)), page(browser.post(url, data={"csrf_token": token}))

    assert both(bad) == both(UNKNOWN_PUBLIC_ID)
    assert both(bad)[0][0] == both(bad)[1][0] == 404
