"""DESIGN §8: JSON bodies are bounded in size and depth. Nesting deep enough to exhaust the parser's recursion
(a RecursionError, i.e. a 500) or merely deeper than any body we accept is a 400 `invalid_request` in JSON, on the
client apps' API (/internal/*) and the portal's JSON API (/api/*) alike."""

import base64

import pytest

from app.client_api.views import MAX_BODY_BYTES
from tests.conftest import Auth, csrf_token_from

DEEP = {
    "recursion": "[" * 100_000 + "]" * 100_000,
    "recursion_in_object": '{"grant": ' + "[" * 2000 + "]" * 2000 + "}",  # within /internal's 4 KiB
    "deeper_than_allowed": '{"grant": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
}


def assert_invalid_request(response):
    assert response.status_code == 400, (response.status_code, response.text[:200])
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize("body", DEEP.values(), ids=DEEP.keys())
@pytest.mark.parametrize("path", ["/internal/grants/verify", "/internal/devices/check"])
def test_internal_endpoints_refuse_deep_json(app, owner, make_client, path, body):
    rp = make_client()
    credentials = base64.b64encode(f"{rp.client_id}:{rp.secret}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"}
    response = app.test_client().post(path, data=body, headers=headers)
    if len(body) > MAX_BODY_BYTES:  # bounded in size first: never parsed at all
        assert response.status_code == 413 and response.json["error"] == "request_too_large"
    else:
        assert_invalid_request(response)


@pytest.mark.parametrize("body", DEEP.values(), ids=DEEP.keys())
@pytest.mark.parametrize(
    "method, path", [("PATCH", "/api/accounts/me/security"), ("POST", "/api/accounts/me/security/revoke-sessions")]
)
def test_the_portal_json_api_refuses_deep_json(app, client, owner, method, path, body):
    Auth(client).login()
    headers = {"X-CSRFToken": csrf_token_from(client.get("/").text), "Content-Type": "application/json"}
    assert_invalid_request(client.open(path, method=method, data=body, headers=headers))
    assert client.get("/account/devices").status_code == 200  # nothing was revoked


def test_a_shallow_body_still_works(app, client, owner):
    Auth(client).login()
    headers = {"X-CSRFToken": csrf_token_from(client.get("/").text)}
    response = client.patch("/api/accounts/me/security", json={"idle_minutes": None}, headers=headers)
    assert response.status_code == 200
