"""id_token_hint as pyoidc (`oic`) sends it: prompt=none with another user's hint is login_required, parsed by oic
(state and RFC 9207 iss checked); an end-session request naming another client than the hint's is refused."""

import requests
from oic import rndstr
from oic.oic.message import AuthorizationErrorResponse, EndSessionRequest

from tests import factories
from tests.conftest import csrf_token_from
from tests.oauth_e2e.conftest import SCOPE, TIMEOUT, follow, redirect_location
from tests.oauth_e2e.test_pyoidc import authorize, redeem, relying_party


def signed_in_as(live_server, email: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(live_server.endpoint("/login"), timeout=TIMEOUT)
    form = {"email": email, "password": factories.PASSWORD, "csrf_token": csrf_token_from(page.text)}
    assert browser.post(live_server.endpoint("/login"), data=form, allow_redirects=False, timeout=TIMEOUT).ok
    return browser


def test_another_users_hint_is_login_required_and_a_foreign_client_id_cannot_log_out(
    live_server, portal, first_party, third_party
):
    client = relying_party(live_server, first_party)
    request, verifier, answer = authorize(client, portal, first_party)
    owner_id_token = redeem(client, request, verifier, answer["code"])["id_token"].jwt

    with signed_in_as(live_server, factories.MEMBER_EMAIL) as member:
        pkce, _ = client.add_code_challenge()
        request_args = {"response_type": "code", "scope": SCOPE, "state": rndstr(24), "nonce": rndstr(24),
                        "redirect_uri": first_party.redirect_uri, "prompt": "none", "id_token_hint": owner_id_token,
                        **pkce}  # fmt: skip
        url, _, _, sent = client.authorization_request_info(request_args=request_args)
        location = redirect_location(follow(member, url), first_party.redirect_uri)
        refused = client.parse_response(AuthorizationErrorResponse, info=location, sformat="urlencoded")
        assert isinstance(refused, AuthorizationErrorResponse)
        assert refused["error"] == "login_required" and refused["state"] == sent["state"]

    # RP-Initiated Logout 1.0 §2: the owner's hint with the other client's id is refused; the owner stays signed in.
    end_session = EndSessionRequest(id_token_hint=owner_id_token, client_id=third_party.client_id, state=rndstr(8))
    answer = portal.get(live_server.endpoint("/oauth/logout") + "?" + end_session.to_urlencoded(),
                        allow_redirects=False, timeout=TIMEOUT)  # fmt: skip
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert portal.get(live_server.endpoint("/account/devices"), allow_redirects=False, timeout=TIMEOUT).ok
