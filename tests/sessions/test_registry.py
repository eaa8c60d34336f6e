"""The session registry over real requests: expiry, activity, sliding cookie, sign-out (DESIGN §3)."""

from datetime import timedelta

from app.audit.models import AuditEvent
from app.sessions.codec import SignedCookieStore
from tests.conftest import SECRET_KEY
from tests.helpers import PORTAL_COOKIE, count_statements, portal_cookie, sessions_of, set_cookies


def test_sign_in_creates_a_session_under_the_account_policy(app, client, auth, owner, clock):
    assert auth.login().status_code == 303
    [row] = sessions_of(app, owner.owner_id)
    assert row.created_at == clock.now()
    assert row.idle_minutes == 30
    assert row.idle_expires_at == clock.now() + timedelta(minutes=30)
    assert row.absolute_expires_at == clock.now() + timedelta(hours=12)
    assert len(row.public_id) >= 43  # 256 random bits, URL-safe


def test_idle_expiry_exactly_at_the_boundary(app, make_app, owner, clock):
    first, second = app.test_client(), app.test_client()
    from tests.conftest import Auth

    Auth(first).login()
    Auth(second).login()
    clock.advance(minutes=30, seconds=-1)
    assert first.get("/").status_code == 200
    clock.advance(seconds=2)  # the untouched second session is now 1 s past its idle expiry
    response = second.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?reason=session_expired")
    ended = [row for row in sessions_of(app, owner.owner_id) if row.revoked_at]
    assert [row.revoked_reason for row in ended] == ["idle_timeout"]
    with app.app_context():
        assert [e.details["reason"] for e in AuditEvent.tagged("session:device:expire")] == ["idle_timeout"]


def test_expired_notice_on_login(client):
    page = client.get("/login?reason=session_expired")
    assert 'class="notice notice--info"' in page.text
    assert "Your session expired. Please sign in again." in page.text
    assert "Your session expired" not in client.get("/login").text


def test_absolute_expiry_despite_constant_activity(app, client, auth, owner, clock):
    with app.app_context():
        from app.accounts.models import Account
        from app.extensions import db

        account = db.session.get(Account, owner.account_id)
        account.idle_minutes, account.absolute_minutes = 15, 60
        db.session.commit()
    auth.login()
    for _ in range(6):
        clock.advance(minutes=10)
        assert client.get("/").status_code == 200
    clock.advance(seconds=1)
    response = client.get("/")
    assert response.headers["Location"].startswith("/login?reason=session_expired")
    [row] = sessions_of(app, owner.owner_id)
    assert row.revoked_reason == "absolute_timeout"


def test_activity_is_written_at_most_once_a_minute(app, client, auth, owner, clock):
    auth.login()
    clock.advance(seconds=61)
    with count_statements(app, "UPDATE user_sessions") as updates:
        for _ in range(100):
            assert client.get("/").status_code == 200
            clock.advance(seconds=0.3)
    assert updates["n"] == 1
    [row] = sessions_of(app, owner.owner_id)
    assert row.idle_expires_at == row.last_used_at + timedelta(minutes=30)


def test_polling_status_is_not_activity(app, client, auth, owner, clock):
    auth.login()
    [before] = sessions_of(app, owner.owner_id)
    for _ in range(100):
        clock.advance(seconds=10)
        response = client.get("/session/status")
        assert response.status_code == 200
        assert PORTAL_COOKIE not in set_cookies(response)
    [after] = sessions_of(app, owner.owner_id)
    assert (after.last_used_at, after.idle_expires_at) == (before.last_used_at, before.idle_expires_at)
    assert response.json["idle_seconds_left"] == 30 * 60 - 1000


def test_cookie_is_reissued_past_half_life_and_never_past_absolute(app, client, auth, owner, clock):
    store = SignedCookieStore(SECRET_KEY)
    auth.login()
    start = clock.now()
    clock.advance(minutes=20)
    assert PORTAL_COOKIE not in set_cookies(client.get("/"))  # before half of the 60-min cookie window
    clock.advance(minutes=15)
    reissued = set_cookies(client.get("/"))[PORTAL_COOKIE]
    handle = store.decode(reissued.value, clock.now())
    assert handle.issued_at == clock.now()
    assert handle.expires_at == clock.now() + timedelta(minutes=60)
    # Keep using it until an hour before the 12 h absolute expiry: the cookie stops there.
    while clock.now() < start + timedelta(hours=11, minutes=30):
        clock.advance(minutes=25)
        response = client.get("/")
        if PORTAL_COOKIE in set_cookies(response):
            last_issue = (clock.now(), set_cookies(response)[PORTAL_COOKIE])
    issued_at, morsel = last_issue
    assert store.decode(morsel.value, issued_at).expires_at == start + timedelta(hours=12)
    assert int(morsel["max-age"]) == (start + timedelta(hours=12) - issued_at).total_seconds()


def test_sign_out_ends_the_session_server_side(app, client, auth, owner):
    auth.login()
    stolen = portal_cookie(client)
    response = auth.logout()
    assert response.status_code == 303
    assert response.headers["Cache-Control"] == "no-store"
    cleared = set_cookies(response)[PORTAL_COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0"
    replay = app.test_client()
    replay.set_cookie(PORTAL_COOKIE, stolen)
    answer = replay.get("/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?reason=session_expired")
    [row] = sessions_of(app, owner.owner_id)
    assert row.revoked_reason == "sign_out"


def test_sign_in_replaces_a_planted_cookie(app, client, auth, owner):
    attacker = app.test_client()
    from tests.conftest import Auth

    Auth(attacker).login()
    planted = portal_cookie(attacker)
    client.set_cookie(PORTAL_COOKIE, planted)
    auth.login()
    victim_cookie = portal_cookie(client)
    assert victim_cookie != planted
    rows = sessions_of(app, owner.owner_id)
    assert len({row.public_id for row in rows}) == 2
    assert [row.revoked_reason for row in rows] == ["replaced_by_sign_in", None]
    attacker.set_cookie(PORTAL_COOKIE, planted)
    assert attacker.get("/").status_code == 302


def test_public_ids_are_unique_across_many_sign_ins(app, owner, clock):
    from app.accounts.models import User
    from app.extensions import db
    from app.sessions.devices import RequestMeta
    from app.sessions.services import start_session

    with app.app_context():
        user = db.session.get(User, owner.owner_id)
        meta = RequestMeta("127.0.0.1", "", "d" * 32)
        ids = {start_session(user, meta, clock.now()).public_id for _ in range(1000)}
        db.session.rollback()
    assert len(ids) == 1000


def test_htmx_request_on_an_ended_session_gets_hx_redirect(client, auth, owner, clock):
    auth.login()
    clock.advance(minutes=31)
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/login?reason=session_expired"


def test_json_request_without_session_gets_401_json(client):
    response = client.get("/session/status")
    assert response.status_code == 401
    assert response.json["error"] == "login_required"


def test_a_cookie_signed_with_a_fallback_key_is_accepted_and_reissued(make_app, clock):
    old_key = "o" * 40
    before = make_app(SECRET_KEY=old_key)
    with before.app_context():
        from tests import factories

        factories.account_with_users()
    from tests.conftest import Auth

    browser = before.test_client()
    Auth(browser).login()
    rotated = make_app(SECRET_KEY_FALLBACKS=[old_key])
    client = rotated.test_client()
    client.set_cookie(PORTAL_COOKIE, portal_cookie(browser))
    response = client.get("/")
    assert response.status_code == 200
    reissued = set_cookies(response)[PORTAL_COOKIE].value
    assert not SignedCookieStore(SECRET_KEY).decode(reissued, clock.now()).signed_with_fallback
