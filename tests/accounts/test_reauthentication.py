"""Re-authentication issues a new session id, as sign-in does, and the old cookie stops working (issue 9 item 11;
OWASP Session Management: renew the session id on any privilege change). OIDC prompt=login and max_age, which send
the browser to this page: tests/oauth/test_reauthentication_renews_the_session.py."""

from urllib.parse import parse_qs, urlsplit

from app.audit.models import AuditEvent
from tests.conftest import Auth, csrf_token_from
from tests.factories import PASSWORD
from tests.helpers import PORTAL_COOKIE, portal_cookie, sessions_of


def reauthenticate(browser, location: str, password: str = PASSWORD):
    token = csrf_token_from(browser.get(location).text)
    next_url = parse_qs(urlsplit(location).query).get("next", [""])[0]
    return browser.post("/account/reauthenticate", data={"csrf_token": token, "password": password, "next": next_url})


def stranger_with(app, cookie: str):
    """Another browser presenting a copy of a cookie (what a fixation or a stolen copy would be)."""
    other = app.test_client()
    other.set_cookie(PORTAL_COOKIE, cookie)
    return other


def test_reauthentication_renews_the_session_id_and_refuses_the_old_cookie(app, client, owner, clock):
    Auth(client).login()
    old_cookie = portal_cookie(client)
    [before] = sessions_of(app, owner.owner_id)
    copy = stranger_with(app, old_cookie)
    assert copy.get("/").status_code == 200  # the copy works while the id is the old one (and is now cached)
    clock.advance(minutes=3)
    response = reauthenticate(client, "/account/reauthenticate?next=/account/devices")
    assert response.status_code == 303 and response.headers["Location"] == "/account/devices"
    new_cookie = portal_cookie(client)
    assert new_cookie != old_cookie
    [after] = sessions_of(app, owner.owner_id)
    assert (after.id, after.revoked_at, after.authenticated_at) == (before.id, None, clock.now())
    assert after.public_id != before.public_id
    assert client.get("/account/devices").status_code == 200
    refused = copy.get("/")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert stranger_with(app, old_cookie).get("/").status_code == 302  # uncached too: the database says no
    with app.app_context():
        [event] = AuditEvent.tagged("account:sign_in:reauthenticate")
        assert event.session_id == after.id


def test_a_wrong_password_keeps_the_session_id(app, client, owner):
    Auth(client).login()
    old_cookie = portal_cookie(client)
    assert reauthenticate(client, "/account/reauthenticate", password="not it").status_code == 400
    assert portal_cookie(client) == old_cookie
    assert stranger_with(app, old_cookie).get("/").status_code == 200
