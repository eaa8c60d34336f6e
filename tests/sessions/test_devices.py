"""Your devices: listing, signing one out (no IDOR), all others, freshness, the expiry status (issue 3)."""

from datetime import timedelta

import pytest

from app.audit.models import AuditEvent
from tests.conftest import Auth, csrf_token_from
from tests.helpers import PORTAL_COOKIE, portal_cookie, sessions_of

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)


def signed_in(app, agent="", email=None, clock=None, advance_minutes=0):
    client = app.test_client()
    kwargs = {"User-Agent": agent}
    if email:
        Auth(client).login(email=email, **kwargs)
    else:
        Auth(client).login(**kwargs)
    if clock and advance_minutes:
        clock.advance(minutes=advance_minutes)
    return client


def post(client, path, page="/account/devices", **headers):
    token = csrf_token_from(client.get(page).text)
    return client.post(path, data={"csrf_token": token}, headers=headers)


def test_list_shows_only_my_live_sessions_newest_activity_first(app, owner, clock):
    firefox = signed_in(app, FIREFOX)
    clock.advance(minutes=2)
    signed_in(app, SAFARI_IOS)
    signed_in(app, "", email="grace@example.test")  # another user's device never appears
    clock.advance(minutes=2)
    me = signed_in(app, "")
    firefox.get("/")  # activity: Firefox is now the most recent besides me
    page = me.get("/account/devices").text
    assert page.count('class="device"') == 3
    assert page.index("Unknown device") < page.index("Firefox on Windows") < page.index("Mobile Safari on iOS")
    assert page.count(">This device<") == 1
    assert "Firefox 125 · Windows 10" in page
    assert "No browser details were sent" in page


def test_htmx_gets_the_list_partial_only(app, owner):
    me = signed_in(app)
    response = me.get("/account/devices", headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<section class="card" id="device-list"')
    assert "HX-Request" in response.headers["Vary"]


def test_sign_out_one_device_in_place_with_htmx(app, owner):
    other = signed_in(app, FIREFOX)
    me = signed_in(app)
    target = sessions_of(app, owner.owner_id)[0]
    response = post(me, f"/account/devices/{target.public_id}/sign-out", **{"HX-Request": "true"})
    assert response.status_code == 200
    assert "Signed out Firefox on Windows." in response.text
    assert "Firefox on Windows</h3>" not in response.text.replace("\n", "")
    assert other.get("/").headers["Location"].startswith("/login?reason=signed_out_elsewhere")
    assert me.get("/").status_code == 200
    with app.app_context():
        [event] = AuditEvent.tagged("session:device:revoke")
        assert event.session_id == target.id


def test_sign_out_one_device_without_javascript(app, owner):
    signed_in(app, FIREFOX)
    me = signed_in(app)
    target = sessions_of(app, owner.owner_id)[0]
    confirm = me.get(f"/account/devices/{target.public_id}/sign-out")
    assert confirm.status_code == 200 and "Sign out Firefox on Windows?" in confirm.text
    response = me.post(
        f"/account/devices/{target.public_id}/sign-out", data={"csrf_token": csrf_token_from(confirm.text)}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/account/devices"
    assert "Signed out Firefox on Windows." in me.get("/account/devices").text


def test_someone_elses_or_an_unknown_device_is_a_404_and_nothing_changes(app, owner):
    signed_in(app, email="grace@example.test")
    me = signed_in(app)
    [graces] = sessions_of(app, owner.member_id)
    foreign = post(me, f"/account/devices/{graces.public_id}/sign-out")
    unknown = post(me, "/account/devices/no-such-id/sign-out")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.text == unknown.text
    assert me.get(f"/account/devices/{graces.public_id}/sign-out").status_code == 404
    assert sessions_of(app, owner.member_id)[0].revoked_at is None


def test_this_device_cannot_be_signed_out_from_the_list(app, owner):
    me = signed_in(app)
    [mine] = sessions_of(app, owner.owner_id)
    assert post(me, f"/account/devices/{mine.public_id}/sign-out").status_code == 404


def test_sign_out_all_other_devices_keeps_only_this_one(app, owner):
    others = [signed_in(app, FIREFOX), signed_in(app, SAFARI_IOS)]
    me = signed_in(app)
    response = post(me, "/account/devices/sign-out-others", **{"HX-Request": "true"})
    assert "Signed out 2 other devices." in response.text
    live = [row for row in sessions_of(app, owner.owner_id) if row.revoked_at is None]
    assert [row.public_id for row in live] == [me.get_cookie(PORTAL_COOKIE) and live[0].public_id]
    for client in others:
        assert client.get("/").status_code == 302
    with app.app_context():
        [event] = AuditEvent.tagged("session:devices:revoke_others")
        assert event.details["count"] == 2


def test_sign_out_others_after_the_freshness_window_asks_for_the_password(app, owner, clock):
    signed_in(app, FIREFOX)
    me = signed_in(app, clock=clock, advance_minutes=11)
    token = csrf_token_from(me.get("/account/devices").text)
    response = me.post("/account/devices/sign-out-others", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/reauthenticate?next=/account/devices/sign-out-others"
    assert len([r for r in sessions_of(app, owner.owner_id) if r.revoked_at is None]) == 2
    htmx = me.post("/account/devices/sign-out-others", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"].startswith("/account/reauthenticate")
    page = me.get(response.headers["Location"])
    wrong = me.post(response.headers["Location"], data={"csrf_token": csrf_token_from(page.text), "password": "nope"})
    assert wrong.status_code == 400 and "That is not your current password." in wrong.text
    right = me.post(
        response.headers["Location"],
        data={"csrf_token": csrf_token_from(page.text), "password": "correct horse battery staple",
              "next": "/account/devices/sign-out-others"},
    )  # fmt: skip
    assert right.headers["Location"] == "/account/devices/sign-out-others"
    assert post(me, "/account/devices/sign-out-others").status_code == 303
    assert len([r for r in sessions_of(app, owner.owner_id) if r.revoked_at is None]) == 1


@pytest.mark.parametrize("path", ["/account/devices/sign-out-others", "/account/devices/x/sign-out", "/session/extend"])
def test_device_actions_need_csrf(app, owner, path):
    signed_in(app, FIREFOX)
    me = signed_in(app)
    assert me.post(path).status_code == 400
    assert len([r for r in sessions_of(app, owner.owner_id) if r.revoked_at is None]) == 2


def test_stay_signed_in_extends_idle_but_never_past_absolute(app, owner, clock):
    me = signed_in(app)
    start = clock.now()
    clock.advance(minutes=26)
    status = me.get("/session/status").json
    assert status["idle_seconds_left"] == 4 * 60
    token = csrf_token_from(me.get("/account/devices").text)
    extended = me.post("/session/extend", headers={"X-CSRFToken": token}).json
    assert extended["idle_seconds_left"] == 30 * 60
    while clock.now() < start + timedelta(hours=11, minutes=50):  # stay active until 10 min before absolute
        clock.advance(minutes=min(20, (start + timedelta(hours=11, minutes=50) - clock.now()).seconds // 60))
        assert me.get("/").status_code == 200
    capped = me.post("/session/extend", headers={"X-CSRFToken": token}).json
    assert capped["idle_seconds_left"] == capped["absolute_seconds_left"] == 10 * 60


def test_status_polls_never_extend_the_session(app, owner, clock):
    me = signed_in(app)
    for _ in range(30):
        clock.advance(minutes=1)
        assert me.get("/session/status").status_code == 200
    clock.advance(minutes=1)
    assert me.get("/session/status").status_code == 401
    assert me.get("/session/status").json["error"] == "login_required"


def test_ended_session_status_tells_the_banner_why(app, owner, clock):
    me = signed_in(app)
    clock.advance(minutes=31)
    response = me.get("/session/status")
    assert response.status_code == 401
    assert response.json["reason"] == "session_expired"


def test_location_from_a_geoip_database(make_app, tmp_path):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    writer.insert_network(
        IPSet(["127.0.0.0/8"]), {"city": {"names": {"en": "Lisbon"}}, "country": {"names": {"en": "Portugal"}}}
    )
    writer.to_db_file(str(tmp_path / "city.mmdb"))
    app = make_app(GEOIP_DATABASE=str(tmp_path / "city.mmdb"))
    with app.app_context():
        from tests import factories

        people = factories.account_with_users()
    me = signed_in(app)
    assert sessions_of(app, people.owner_id)[0].location == "Lisbon, Portugal"
    assert "Lisbon, Portugal" in me.get("/account/devices").text


def test_no_location_without_a_geoip_database(app, owner):
    me = signed_in(app)
    assert sessions_of(app, owner.owner_id)[0].location is None
    assert "Location" not in me.get("/account/devices").text


def test_stolen_cookie_replayed_after_device_sign_out_stays_out(app, owner):
    victim = signed_in(app, FIREFOX)
    stolen = portal_cookie(victim)
    me = signed_in(app)
    post(me, f"/account/devices/{sessions_of(app, owner.owner_id)[0].public_id}/sign-out")
    thief = app.test_client()
    thief.set_cookie(PORTAL_COOKIE, stolen)
    assert thief.get("/account/devices").status_code == 302


@pytest.mark.parametrize("value", ["a" * 24 + "\n", "a" * 24 + "\x00", "a" * 15, "a" * 65, "a" * 23 + "é", None, ""])
def test_a_malformed_device_cookie_is_not_a_device_id(value):
    from app.sessions.devices import valid_device_id

    assert not valid_device_id(value)
    assert valid_device_id("a" * 24)
