"""OAuth harness: registered clients, PKCE pairs, and the authorize → consent → token dance over HTTP."""

import base64
import functools
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from app.extensions import db
from app.oauth.clients import register_client
from tests.conftest import Auth, csrf_token_from

REDIRECT_URI = "https://app.test/cb"


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT_URI

    def auth(self) -> dict:
        """client_secret_post credentials (or the bare id of a public client)."""
        return {"client_id": self.client_id} | ({"client_secret": self.secret} if self.secret else {})


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def registered_client(app, clock, redirect_uris=(REDIRECT_URI,), **options) -> Client:
    """A client app registered on app (committed): its id, its secret and its first redirect URI."""
    with app.app_context():
        registered = register_client("Example App", list(redirect_uris), clock.now(), **options)
        db.session.commit()
        return Client(registered.client.client_id, registered.secret, redirect_uris[0])


@pytest.fixture
def make_client(app, clock):
    return functools.partial(registered_client, app, clock)


@pytest.fixture
def rp(make_client):
    """A confidential, first-party client (no consent page)."""
    return make_client(first_party=True)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


class Flow:
    """One browser (a test client) signed in to the portal, talking to one relying party."""

    def __init__(self, app, client: Client):
        self.app, self.rp = app, client
        self.browser = app.test_client()

    def sign_in(self, **kwargs):
        Auth(self.browser).login(**kwargs)
        return self

    def authorize(self, challenge: str, **params):
        query = {"response_type": "code", "client_id": self.rp.client_id, "redirect_uri": self.rp.redirect_uri,
                 "scope": "openid profile email", "state": "st-1", "nonce": "n-1", "code_challenge": challenge,
                 "code_challenge_method": "S256"} | params  # fmt: skip
        return self.browser.get("/oauth/authorize", query_string={k: v for k, v in query.items() if v is not None})

    def consent(self, page, decision="approve"):
        from html.parser import HTMLParser

        fields = {}

        class Inputs(HTMLParser):
            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                if tag == "input" and attrs.get("type") == "hidden":
                    fields[attrs["name"]] = attrs["value"]

        Inputs().feed(page.text)
        return self.browser.post("/oauth/consent", data=fields | {"decision": decision})

    def code(self, **params) -> tuple[str, str]:
        verifier, challenge = pkce()
        response = self.authorize(challenge, **params)
        if response.status_code == 200 and "consent" in response.text:
            response = self.consent(response)
        assert response.status_code in (302, 303), response.text[:500]
        answer = query_of(response.headers["Location"])
        assert "code" in answer, answer
        return answer["code"], verifier

    def token(self, **form):
        return self.app.test_client().post("/oauth/token", data=self.rp.auth() | form)

    def redeem(self, code: str, verifier: str, **extra):
        return self.token(grant_type="authorization_code", code=code, code_verifier=verifier,
                          redirect_uri=self.rp.redirect_uri, **extra)  # fmt: skip

    def tokens(self, **params) -> dict:
        response = self.redeem(*self.code(**params))
        assert response.status_code == 200, response.json
        return response.json

    def introspect(self, token: str) -> dict:
        return self.app.test_client().post("/oauth/introspect", data=self.rp.auth() | {"token": token}).json

    def refresh(self, refresh_token: str, **extra):
        return self.token(grant_type="refresh_token", refresh_token=refresh_token, **extra)


@pytest.fixture
def flow(app, owner, rp) -> Flow:
    return Flow(app, rp).sign_in()


def csrf_of(client, path="/"):
    return csrf_token_from(client.get(path).text)
