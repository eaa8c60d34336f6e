"""A live portal on localhost and the demo client app on 127.0.0.1 (two sites, as `make run` serves them: the
portal needs a name for WebAuthn), each on its own free port.

The portal runs on the shared FrozenClock set to the real time (like tests/oauth_e2e); the kit has a clock of its
own, so a test moves the kit past its verify cache (61 s) without touching the portal. SQLite only: these tests
check the conversation between the two apps; the backends are covered by tests/client_api and tests/oauth.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests
from flask import Flask

from app.clock import FrozenClock
from app.extensions import db
from app.oauth.clients import register_client
from app.relying_party import EXTENSION_KEY, Gatehouse
from app.relying_party.demo import create_app as create_demo_app
from tests import factories
from tests.conftest import csrf_token_from
from tests.helpers import LiveWSGIServer, serving

TIMEOUT = 10  # seconds, for every HTTP call a test makes itself
DEMO_SECRET_KEY = "demo-test-secret-" + "y" * 32


@pytest.fixture
def database_url(database_urls) -> str:
    """Overrides the sqlite/postgresql parametrization: these tests run once, on SQLite."""
    return database_urls["sqlite"]


class _LateApp:
    """The WSGI callable a server is bound with; the real app is built once the port (so the URL) is known."""

    app: Flask | None = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@dataclass
class Served:
    url: str
    app: Flask
    server: LiveWSGIServer


def _serve(build) -> Iterator[Served]:
    """Serve build(port) on a free loopback port in a thread; stopped at teardown."""
    late = _LateApp()
    with serving(late) as server:
        url, late.app = build(server.server_port)
        yield Served(url, late.app, server)


@pytest.fixture
def portal(make_app, clock) -> Iterator[Served]:
    """The portal, issuer = its own base URL on localhost (a passkey RP ID must be a name, DESIGN §9)."""
    clock.set(datetime.now(UTC).replace(microsecond=0))

    def build(port: int):
        url = f"http://localhost:{port}"
        return url, make_app(ISSUER=url)

    yield from _serve(build)


@pytest.fixture
def app(portal) -> Flask:
    """The portal app: fixtures built on `app` (owner, ...) write to the database the live portal reads."""
    return portal.app


@pytest.fixture
def kit_clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str


def register_demo(portal: Served, clock: FrozenClock, base_url: str) -> Registered:
    """The demo client as `flask demo` registers it, at this test's address."""
    with portal.app.app_context():
        registered = register_client(
            "Demo App",
            [f"{base_url}/auth/callback"],
            clock.now(),
            first_party=True,
            backchannel_logout_uri=f"{base_url}/auth/backchannel-logout",
            post_logout_redirect_uris=[f"{base_url}/"],
        )
        db.session.commit()
        return Registered(registered.client.client_id, registered.secret)


@pytest.fixture
def demo(portal, clock, kit_clock, owner, tmp_path) -> Iterator[Served]:
    """The demo app on http://127.0.0.1:PORT (another site than the portal), registered with the portal."""

    def build(port: int):
        url = f"http://127.0.0.1:{port}"
        client = register_demo(portal, clock, url)
        config = {"GATEHOUSE_ISSUER": portal.url, "DEMO_URL": url, "DEMO_CLIENT_ID": client.client_id,
                  "DEMO_CLIENT_SECRET": client.secret, "DEMO_SECRET_KEY": DEMO_SECRET_KEY,
                  "GATEHOUSE_CLOCK": kit_clock.now, "INSTANCE_PATH": str(tmp_path), "TESTING": True}  # fmt: skip
        return url, create_demo_app(config)

    yield from _serve(build)


def kit_of(served: Served) -> Gatehouse:
    return served.app.extensions[EXTENSION_KEY]


def portal_sign_in(browser: requests.Session, portal_url: str, email: str = factories.OWNER_EMAIL) -> None:
    """Sign in to the portal through its form (CSRF included)."""
    page = browser.get(f"{portal_url}/login", timeout=TIMEOUT)
    answer = browser.post(
        f"{portal_url}/login",
        data={"email": email, "password": factories.PASSWORD, "csrf_token": csrf_token_from(page.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 303, answer.text[:500]


@pytest.fixture
def browser(portal, owner) -> Iterator[requests.Session]:
    """A browser (requests) signed in to the portal; it keeps each site's cookies apart."""
    with requests.Session() as session:
        portal_sign_in(session, portal.url)
        yield session


def demo_sign_in(browser: requests.Session, demo: Served) -> requests.Response:
    """Sign in button → portal (already signed in) → callback → home; the answer is the home page."""
    page = browser.get(f"{demo.url}/auth/login", timeout=TIMEOUT)
    assert page.status_code == 200 and page.url == f"{demo.url}/", page.url
    return page


def portal_sign_out(browser: requests.Session, portal_url: str) -> None:
    """The portal's own Sign out button: its session ends, and with it every grant it approved."""
    page = browser.get(f"{portal_url}/", timeout=TIMEOUT)
    answer = browser.post(f"{portal_url}/logout", data={"csrf_token": csrf_token_from(page.text)},
                          allow_redirects=False, timeout=TIMEOUT)  # fmt: skip
    assert answer.status_code == 303, answer.text[:500]


def demo_session(browser: requests.Session, demo: Served) -> dict:
    """The demo app's cookie session as the app reads it (signed, not encrypted)."""
    raw = next(cookie.value for cookie in browser.cookies if cookie.name == "demo_session")
    return demo.app.session_interface.get_signing_serializer(demo.app).loads(raw)


def home(browser: requests.Session, demo: Served) -> str:
    page = browser.get(f"{demo.url}/", timeout=TIMEOUT)
    assert page.status_code == 200, page.status_code
    return page.text


SIGNED_IN, SIGNED_OUT = "Hello, Ada", "You are signed out"
