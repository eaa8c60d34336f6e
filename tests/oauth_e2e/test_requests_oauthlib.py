"""Catalogue #12 with requests-oauthlib / oauthlib: authorization code + PKCE S256, refresh, revocation, consent.

Everything a relying party would do goes through the library (authorization URL, PKCE pair, state check, token
request, bearer header, refresh); only the user's part (following the redirect, the consent form) is a plain
requests.Session signed in to the portal.
"""

import pytest
from oauthlib.oauth2 import AccessDeniedError, InvalidGrantError, WebApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.oauth_e2e.conftest import SCOPE, TIMEOUT, decide, follow, hidden_inputs, query_of, redirect_location

pytestmark = pytest.mark.usefixtures("oauthlib_allows_http")


class Recorder:
    """requests-oauthlib compliance hooks that keep what went over the wire to the token endpoint."""

    def __init__(self, oauth: OAuth2Session):
        self.requests: list[dict] = []
        self.responses = []
        oauth.register_compliance_hook("access_token_request", self.token_request)
        oauth.register_compliance_hook("access_token_response", self.token_response)
        oauth.register_compliance_hook("refresh_token_response", self.token_response)

    def token_request(self, url, headers, request_kwargs):
        self.requests.append(dict(request_kwargs["data"]))
        return url, headers, request_kwargs

    def token_response(self, response):
        self.responses.append(response)
        return response


def session_for(rp) -> tuple[OAuth2Session, WebApplicationClient]:
    client = WebApplicationClient(rp.client_id)
    oauth = OAuth2Session(client=client, redirect_uri=rp.redirect_uri, scope=SCOPE.split(), pkce="S256")
    return oauth, client


def assert_not_cached(response) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def authorization_url(live_server, oauth: OAuth2Session, nonce: str = "n-oauthlib") -> tuple[str, str]:
    url, state = oauth.authorization_url(live_server.endpoint("/oauth/authorize"), nonce=nonce)
    sent = query_of(url)
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["response_type"] == "code" and sent["state"] == state
    return url, state


def test_first_party_code_flow_refresh_and_revocation(live_server, portal, first_party, owner):
    token_url = live_server.endpoint("/oauth/token")
    userinfo_url = live_server.endpoint("/oauth/userinfo")
    oauth, client = session_for(first_party)
    with oauth:
        wire = Recorder(oauth)
        url, state = authorization_url(live_server, oauth)

        # A first-party client needs no consent: the signed-in browser is sent straight back with a code.
        location = redirect_location(follow(portal, url), first_party.redirect_uri)
        answer = query_of(location)
        assert answer["state"] == state
        assert answer["iss"] == live_server.url  # RFC 9207
        assert answer["code"].startswith("ghc_")

        token = oauth.fetch_token(
            token_url, authorization_response=location, client_secret=first_party.secret, include_client_id=True
        )
        sent = wire.requests[-1]
        assert sent["grant_type"] == "authorization_code" and sent["redirect_uri"] == first_party.redirect_uri
        assert len(sent["code_verifier"]) == 43  # the library kept the PKCE verifier and sent it
        assert sent["client_id"] == first_party.client_id and sent["client_secret"] == first_party.secret
        assert_not_cached(wire.responses[-1])
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == live_server.app.config["ACCESS_TOKEN_TTL_SECONDS"]
        assert token["scope"] == SCOPE.split()
        assert token["refresh_token"].startswith("ghr_") and token["id_token"].count(".") == 2

        info = oauth.get(userinfo_url, timeout=TIMEOUT)
        assert info.status_code == 200
        assert_not_cached(info)
        assert info.json() == {"sub": str(owner.owner_id), "name": "Ada Lovelace", "email": "ada@example.test",
                               "email_verified": False}  # fmt: skip
        assert info.request.headers["Authorization"] == f"Bearer {token['access_token']}"

        # Refresh with client_secret_basic this time: a new access token and a rotated refresh token.
        refreshed = oauth.refresh_token(token_url, auth=HTTPBasicAuth(first_party.client_id, first_party.secret))
        assert_not_cached(wire.responses[-1])
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert refreshed["scope"] == SCOPE.split() and "id_token" in refreshed
        assert oauth.get(userinfo_url, timeout=TIMEOUT).json()["sub"] == str(owner.owner_id)

        # RFC 7009 revocation, prepared by oauthlib, authenticated with client_secret_post.
        revoke_url, headers, body = client.prepare_token_revocation_request(
            live_server.endpoint("/oauth/revoke"),
            refreshed["refresh_token"],
            token_type_hint="refresh_token",
            client_id=first_party.client_id,
            client_secret=first_party.secret,
        )
        revoked = oauth.post(revoke_url, data=body, headers=headers, withhold_token=True, timeout=TIMEOUT)
        assert revoked.status_code == 200
        assert_not_cached(revoked)

        with pytest.raises(InvalidGrantError):
            oauth.refresh_token(token_url, auth=HTTPBasicAuth(first_party.client_id, first_party.secret))
        # Revoking the refresh token ended the grant: its access tokens stop working at userinfo too.
        after = oauth.get(userinfo_url, timeout=TIMEOUT)
        assert after.status_code == 401
        assert after.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_third_party_consent_approved_then_remembered(live_server, portal, third_party, owner):
    token_url = live_server.endpoint("/oauth/token")
    oauth, _ = session_for(third_party)
    with oauth:
        url, state = authorization_url(live_server, oauth)
        page = follow(portal, url)
        assert page.status_code == 200 and "Allow Example Third Party" in page.text
        carried = hidden_inputs(page.text)
        sent = query_of(url)
        for name in ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"):
            assert carried[name] == sent[name], name

        location = redirect_location(decide(portal, live_server.url, page, "approve"), third_party.redirect_uri)
        answer = query_of(location)
        assert answer["state"] == state and answer["iss"] == live_server.url
        token = oauth.fetch_token(
            token_url, authorization_response=location, client_secret=third_party.secret, include_client_id=True
        )
        assert token["scope"] == SCOPE.split()
        info = oauth.get(live_server.endpoint("/oauth/userinfo"), timeout=TIMEOUT)
        assert info.status_code == 200 and info.json()["sub"] == str(owner.owner_id)

    # The same app asking again for the same scopes: no consent page this time, a code straight away.
    again, _ = session_for(third_party)
    with again:
        url, state = authorization_url(live_server, again)
        location = redirect_location(follow(portal, url), third_party.redirect_uri)
        assert query_of(location)["state"] == state
        assert again.fetch_token(
            token_url, authorization_response=location, client_secret=third_party.secret, include_client_id=True
        )["access_token"]


def test_third_party_consent_denied(live_server, portal, third_party):
    oauth, _ = session_for(third_party)
    with oauth:
        url, state = authorization_url(live_server, oauth)
        page = follow(portal, url)
        location = redirect_location(decide(portal, live_server.url, page, "deny"), third_party.redirect_uri)
        answer = query_of(location)
        assert answer["error"] == "access_denied"
        assert answer["state"] == state and answer["iss"] == live_server.url
        assert "code" not in answer
        # The library reads the error response for what it is.
        with pytest.raises(AccessDeniedError):
            oauth.fetch_token(
                live_server.endpoint("/oauth/token"),
                authorization_response=location,
                client_secret=third_party.secret,
                include_client_id=True,
            )
