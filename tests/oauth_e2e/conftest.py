"""Catalogue #12: the provider served on 127.0.0.1, driven by OAuth/OIDC client libraries nobody here wrote.

Only SQLite here (like tests/e2e): these tests check interoperability over real HTTP; the backends are covered
by tests/oauth. The issuer is the served base URL, so every URL the libraries see (discovery, `iss`, endpoints)
is one they can actually reach.

The server runs on the shared FrozenClock, set to the real time when the test starts: the libraries check a JWT's
`exp` and `iat` against the wall clock, so tokens minted at the fixed 2026-01-05 default would look expired (or
issued in the future). The clock still never moves by itself: times stay exact within a test.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from app.clock import FrozenClock
from app.extensions import db
from app.oauth.clients import register_client
from tests import factories
from tests.conftest import csrf_token_from
from tests.helpers import serving

TIMEOUT = 10  # seconds, for every HTTP call a test makes itself
SCOPE = "openid profile email"


@pytest.fixture
def database_url(database_urls) -> str:
    """Overrides the sqlite/postgresql parametrization: these tests run once, on SQLite."""
    return database_urls["sqlite"]


@dataclass(frozen=True)
class LiveServer:
    url: str  # also the issuer
    app: Flask
    clock: FrozenClock

    def endpoint(self, path: str) -> str:
        return self.url + path


class _LateApp:
    """The WSGI callable the server is bound with: the real app is built once the port (so the issuer) is known."""

    app: Flask | None = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture
def live_server(make_app, clock) -> Iterator[LiveServer]:
    """An app built by make_app with ISSUER = its own base URL, served on a free loopback port."""
    clock.set(datetime.now(UTC).replace(microsecond=0))
    late = _LateApp()
    with serving(late) as server:
        url = f"http://127.0.0.1:{server.server_port}"
        late.app = make_app(ISSUER=url)
        yield LiveServer(url=url, app=late.app, clock=clock)


@pytest.fixture
def app(live_server) -> Flask:
    """The served app: fixtures built on `app` (owner, ...) write to the database the live server reads."""
    return live_server.app


@dataclass(frozen=True)
class RelyingParty:
    client_id: str
    secret: str
    redirect_uri: str


def _register(live_server: LiveServer, name: str, first_party: bool) -> RelyingParty:
    redirect_uri = live_server.endpoint("/cb")  # loopback http is allowed (RFC 8252 §7.3); never followed
    with live_server.app.app_context():
        registered = register_client(name, [redirect_uri], live_server.clock.now(), first_party=first_party)
        db.session.commit()
        return RelyingParty(registered.client.client_id, registered.secret, redirect_uri)


@pytest.fixture
def first_party(live_server) -> RelyingParty:
    """A confidential first-party client: no consent page."""
    return _register(live_server, "Gatehouse Console", first_party=True)


@pytest.fixture
def third_party(live_server) -> RelyingParty:
    """A confidential third-party client: the user approves it on the consent page."""
    return _register(live_server, "Example Third Party", first_party=False)


@pytest.fixture
def portal(live_server, owner) -> Iterator[requests.Session]:
    """The user's browser: a requests.Session signed in to the portal through the real form (CSRF included)."""
    with requests.Session() as browser:
        page = browser.get(live_server.endpoint("/login"), timeout=TIMEOUT)
        assert page.status_code == 200
        signed_in = browser.post(
            live_server.endpoint("/login"),
            data={
                "email": factories.OWNER_EMAIL,
                "password": factories.PASSWORD,
                "csrf_token": csrf_token_from(page.text),
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert signed_in.status_code == 303, signed_in.text[:500]
        assert browser.cookies.get("gh_session"), "no portal cookie after signing in"
        yield browser


@pytest.fixture
def oauthlib_allows_http(monkeypatch) -> None:
    """oauthlib refuses http:// URLs unless told otherwise; the live server is plain-http loopback."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def follow(browser: requests.Session, url: str) -> requests.Response:
    """The browser opens the authorization URL; the provider's answer is not followed (it leaves the provider)."""
    return browser.get(url, allow_redirects=False, timeout=TIMEOUT)


def hidden_inputs(html: str) -> dict[str, str]:
    fields: dict[str, str] = {}

    class Inputs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "input" and attrs.get("type") == "hidden":
                fields[attrs["name"]] = attrs["value"] or ""

    Inputs().feed(html)
    return fields


def decide(browser: requests.Session, base_url: str, consent_page: requests.Response, decision: str):
    """Submit the consent form as the browser would: its hidden inputs plus the button pressed."""
    assert consent_page.status_code == 200 and 'action="/oauth/consent"' in consent_page.text
    fields = hidden_inputs(consent_page.text)
    assert fields.get("csrf_token"), "the consent form carries no CSRF token"
    return browser.post(
        base_url + "/oauth/consent", data=fields | {"decision": decision}, allow_redirects=False, timeout=TIMEOUT
    )


def redirect_location(response: requests.Response, redirect_uri: str) -> str:
    """The authorization response: a redirect to the client's registered redirect URI."""
    assert response.status_code in (302, 303), f"{response.status_code}: {response.text[:500]}"
    location = response.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    return location
