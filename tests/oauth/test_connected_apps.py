"""Connected apps: per device and everywhere; another user's grant is a 404 (issue 4)."""

import re

from tests.conftest import csrf_token_from
from tests.oauth.conftest import Flow


def post(client, path):
    return client.post(path, data={"csrf_token": csrf_token_from(client.get("/account/devices").text)})


def test_devices_page_lists_the_apps_each_device_signed_into(app, flow, clock):
    tokens = flow.tokens()
    clock.advance(minutes=3)
    flow.refresh(tokens["refresh_token"])
    page = re.sub(r"<[^>]+>|\s+", " ", flow.browser.get("/account/devices").text)
    page = re.sub(r" +", " ", page)
    assert "Example App" in page and "connected 3 min ago" in page and "last refresh just now" in page


def test_disconnect_one_device_keeps_the_other(app, owner, rp):
    laptop, phone = Flow(app, rp).sign_in(), Flow(app, rp).sign_in()
    laptop_tokens, phone_tokens = laptop.tokens(), phone.tokens()
    sid = laptop.introspect(laptop_tokens["access_token"])["sid"]
    confirm = laptop.browser.get(f"/account/apps/grants/{sid}/disconnect")
    assert "Disconnect Example App from Unknown device?" in confirm.text  # the device by name, not "this device"
    response = post(laptop.browser, f"/account/apps/grants/{sid}/disconnect")
    assert response.status_code == 303
    assert "Disconnected Example App from that device." in laptop.browser.get("/account/devices").text
    assert laptop.refresh(laptop_tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert phone.refresh(phone_tokens["refresh_token"]).status_code == 200
    assert laptop.browser.get("/").status_code == 200  # the portal session itself stays


def test_disconnect_everywhere(app, owner, make_client):
    rp = make_client()  # third party: consent is remembered through the grants
    laptop, phone = Flow(app, rp).sign_in(), Flow(app, rp).sign_in()
    laptop_tokens, phone_tokens = laptop.tokens(), phone.tokens()
    page = laptop.browser.get("/account/apps").text
    assert "On 2 devices" in page
    response = post(laptop.browser, f"/account/apps/{rp.client_id}/disconnect")
    assert response.status_code == 303
    assert "Disconnected Example App from 2 devices." in laptop.browser.get("/account/apps").text
    for flow, tokens in ((laptop, laptop_tokens), (phone, phone_tokens)):
        assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    from tests.oauth.conftest import pkce, query_of

    # catalogue #21: the consent went with the grants.
    answer = query_of(laptop.authorize(pkce()[1], prompt="none").headers["Location"])
    assert answer["error"] == "consent_required"


def test_someone_elses_grant_or_app_is_a_404(app, owner, rp):
    ada = Flow(app, rp).sign_in()
    sid = ada.introspect(ada.tokens()["access_token"])["sid"]
    grace = Flow(app, rp).sign_in(email="grace@example.test")
    assert post(grace.browser, f"/account/apps/grants/{sid}/disconnect").status_code == 404
    assert grace.browser.get(f"/account/apps/grants/{sid}/disconnect").status_code == 404
    assert post(grace.browser, f"/account/apps/{rp.client_id}/disconnect").status_code == 404
    assert grace.browser.get(f"/account/apps/{rp.client_id}/disconnect").status_code == 404  # never connected
    assert "Disconnect Example App everywhere?" in ada.browser.get(f"/account/apps/{rp.client_id}/disconnect").text
    assert post(grace.browser, "/account/apps/gh_nope/disconnect").status_code == 404
    assert ada.introspect(ada.tokens()["access_token"])["active"] is True
