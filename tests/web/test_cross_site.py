"""State-changing requests from another site are refused even with a valid token (catalogue #9, #10)."""

import pytest

from tests.conftest import Auth, csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.helpers import sessions_of

CROSS_SITE = [{"Origin": "https://evil.test"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_logout_is_refused(app, client, auth, owner, headers):
    auth.login()
    token = csrf_token_from(client.get("/").text)
    response = client.post("/logout", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 403
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_login_csrf_from_another_site_is_refused(app, client, owner, headers):
    token = csrf_token_from(client.get("/login").text)
    data = {"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=data, headers=headers).status_code == 403
    assert sessions_of(app, owner.owner_id) == []


def test_same_origin_requests_pass(app, client, auth, owner):
    auth.login()
    token = csrf_token_from(client.get("/").text)
    headers = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/logout", data={"csrf_token": token}, headers=headers).status_code == 303


def test_cross_site_json_api_call_is_refused_as_json(app, client, owner):
    Auth(client).login()
    token = csrf_token_from(client.get("/").text)
    response = client.post(
        "/api/accounts/me/security/revoke-sessions",
        json={"scope": "all"},
        headers={"X-CSRFToken": token, "Origin": "https://evil.test"},
    )
    assert response.status_code == 403 and response.json["error"] == "access_denied"
    assert client.get("/").status_code == 200


def test_cross_site_get_navigation_still_works(client, owner):
    assert client.get("/login", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200
