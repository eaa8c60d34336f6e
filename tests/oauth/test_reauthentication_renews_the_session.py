"""OIDC prompt=login and max_age re-authenticate through the portal's "confirm it's you", which issues a new session
id: the old cookie stops working, the session and its grants go on (issue 9 item 11)."""

from tests.accounts.test_reauthentication import reauthenticate, stranger_with
from tests.helpers import portal_cookie
from tests.oauth.conftest import Flow, pkce, query_of


def test_prompt_login_renews_the_session_id_and_keeps_its_grants(app, owner, make_client, clock):
    flow = Flow(app, make_client(first_party=True)).sign_in()
    first = flow.tokens()
    old_cookie = portal_cookie(flow.browser)
    clock.advance(minutes=5)
    location = flow.authorize(pkce()[1], prompt="login").headers["Location"]
    assert location.startswith("/account/reauthenticate?next=/oauth/authorize")
    back = reauthenticate(flow.browser, location)
    assert back.status_code == 303
    answer = query_of(flow.browser.get(back.headers["Location"]).headers["Location"])
    assert "code" in answer  # the authorization goes on under the new id
    assert portal_cookie(flow.browser) != old_cookie
    assert stranger_with(app, old_cookie).get("/").status_code == 302
    assert flow.introspect(first["access_token"])["active"] is True  # the session did not end: its grant stays


def test_max_age_renews_the_session_id(app, owner, make_client, clock):
    flow = Flow(app, make_client(first_party=True)).sign_in()
    old_cookie = portal_cookie(flow.browser)
    clock.advance(seconds=30)
    location = flow.authorize(pkce()[1], max_age="10").headers["Location"]
    assert location.startswith("/account/reauthenticate")
    assert reauthenticate(flow.browser, location).status_code == 303
    assert portal_cookie(flow.browser) != old_cookie
    assert stranger_with(app, old_cookie).get("/").status_code == 302
