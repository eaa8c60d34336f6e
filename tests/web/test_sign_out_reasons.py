"""A device signed out remotely is told what happened (issue 9 item 13), never just "Your session expired"."""

import pytest

from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, PASSWORD
from tests.helpers import sessions_of

NEW_PASSWORD = "a long enough brand new passphrase"
KINDS = ("page", "htmx", "json")
NOTICES = {
    "signed_out_elsewhere": "You were signed out from another device.",
    "signed_out_by_owner": "Your account&#39;s owner signed you out.",
    "password_changed": "You were signed out because your password was changed.",
    "session_expired": "Your session expired.",
}


def signed_in(app, email=None):
    client = app.test_client()
    Auth(client).login(**({"email": email} if email else {}))
    assert client.get("/").status_code == 200  # the registry entry is cached: the cached path must know why too
    return client


def post_form(client, path, page, **fields):
    token = csrf_token_from(client.get(page).text)
    return client.post(path, data={"csrf_token": token, **fields})


def reason_told(client, kind: str) -> str:
    """The ?reason= the ended device is sent to, for a page load, an htmx request or a JSON client."""
    if kind == "json":
        answer = client.get("/api/accounts/me/security", headers={"Accept": "application/json"})
        assert answer.status_code == 401
        return answer.json["reason"]
    if kind == "htmx":
        location = client.get("/account/devices", headers={"HX-Request": "true"}).headers["HX-Redirect"]
    else:
        location = client.get("/account/devices").headers["Location"]
    assert location.startswith("/login?reason=")
    return location.split("reason=", 1)[1].split("&", 1)[0]


def assert_told(app, client, kind: str, reason: str) -> None:
    assert reason_told(client, kind) == reason
    page = app.test_client().get(f"/login?reason={reason}").text
    assert 'class="notice notice--info"' in page and NOTICES[reason] in page
    for other in set(NOTICES) - {reason}:
        assert NOTICES[other] not in page


@pytest.mark.parametrize("kind", KINDS)
def test_a_device_signed_out_from_another_device_is_told_so(app, owner, kind):
    phone, laptop = signed_in(app), signed_in(app)
    phone_row = sessions_of(app, owner.owner_id)[0]
    post_form(laptop, f"/account/devices/{phone_row.public_id}/sign-out", "/account/devices")
    assert_told(app, phone, kind, "signed_out_elsewhere")


@pytest.mark.parametrize("kind", KINDS)
def test_sign_out_all_other_devices_tells_each_of_them(app, owner, kind):
    phone, laptop = signed_in(app), signed_in(app)
    post_form(laptop, "/account/devices/sign-out-others", "/account/devices")
    assert_told(app, phone, kind, "signed_out_elsewhere")
    assert laptop.get("/").status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_a_member_signed_out_by_the_owner_is_told_so(app, owner, kind):
    member, me = signed_in(app, MEMBER_EMAIL), signed_in(app)
    post_form(me, "/account/security/revoke/others", "/account/security/revoke/others")
    assert_told(app, member, kind, "signed_out_by_owner")


@pytest.mark.parametrize("kind", KINDS)
def test_a_password_change_tells_the_other_devices_why(app, owner, kind):
    other, me = signed_in(app), signed_in(app)
    fields = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    assert post_form(me, "/account", "/account", **fields).status_code == 303
    assert_told(app, other, kind, "password_changed")


@pytest.mark.parametrize("kind", KINDS)
def test_idle_expiry_says_expired(app, owner, clock, kind):
    device = signed_in(app)
    clock.advance(minutes=31)
    assert_told(app, device, kind, "session_expired")


@pytest.mark.parametrize("reason", ["", "revoked", "<b>hacked</b>", "session_expired ", "SESSION_EXPIRED"])
def test_a_reason_outside_the_closed_set_shows_no_notice(client, reason):
    page = client.get("/login", query_string={"reason": reason}).text
    assert "notice--info" not in page and "hacked" not in page
