"""Cookie attributes, security headers, and error answers in the site's style or as JSON (DESIGN §7, §8)."""

import base64
from datetime import timedelta

import pytest

from app import create_app
from app.config import ConfigError
from tests import factories
from tests.conftest import Auth, base_config, csrf_token_from, random_suffix
from tests.helpers import set_cookies

HTTPS = {"base_url": "https://gatehouse.test"}


@pytest.fixture
def production_app(make_app):
    return make_app(GATEHOUSE_ENV="production", ISSUER="https://gatehouse.test")


def https_login(app):
    client = app.test_client()
    page = client.get("/login", **HTTPS)
    from tests.conftest import csrf_token_from
    from tests.factories import OWNER_EMAIL, PASSWORD

    response = client.post(
        "/login",
        data={"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": csrf_token_from(page.text)},
        headers={"Referer": "https://gatehouse.test/login"},
        **HTTPS,
    )
    return client, response


def test_production_cookie_attributes(production_app, owner, clock):
    _, response = https_login(production_app)
    assert response.status_code == 303
    cookies = set_cookies(response)
    session = cookies["__Host-gh_session"]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"
    assert session["path"] == "/"
    assert session["domain"] == ""
    assert int(session["max-age"]) == timedelta(hours=12).total_seconds()  # ≤ the absolute expiry
    assert len(session.value) < 4096
    assert cookies["__Host-gh_did"]["secure"]
    assert response.headers["Cache-Control"] == "no-store"
    for header in response.headers.getlist("Set-Cookie"):
        assert "Domain=" not in header


def test_production_headers_include_hsts(production_app):
    response = production_app.test_client().get("/login", **HTTPS)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("path", ["/login", "/", "/no-such-page"])
def test_security_headers_on_every_page(client, path):
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # development serves plain http


def test_pages_have_no_inline_script(client):
    page = client.get("/login").text
    assert "<script>" not in page and "onclick" not in page and "style=" not in page


def test_static_files_are_cacheable(client):
    response = client.get("/static/css/app.css")
    response.close()  # a file-backed response: close it or the test leaks a file handle
    assert response.status_code == 200
    assert response.headers.get("Cache-Control") != "no-store"


def test_404_page_in_site_style(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.text and 'class="card' in response.text


def test_404_as_json_for_json_clients(client):
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json == {
        "error": "not_found",
        "error_description": "There is nothing here. Check the address, or go back home.",
    }


def test_405_carries_allow(client):
    response = client.put("/login")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_413(client):
    response = client.post("/login", data={"email": "a" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    assert "Request too large" in response.text


def test_unexpected_error_is_a_500_page_without_a_trace(make_app):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text
    json_response = app.test_client().get("/boom", headers={"Accept": "application/json"})
    assert json_response.json["error"] == "server_error"


def test_database_down_is_a_503_and_never_authenticates(app, client, auth, owner):
    auth.login()
    cookie = client.get_cookie("gh_session").value
    down = create_app(
        base_config("postgresql+psycopg://postgres@127.0.0.1:1/none", CLOCK=app.extensions["gatehouse.clock"])
    )
    other = down.test_client()
    other.set_cookie("gh_session", cookie)
    response = other.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Temporarily unavailable" in response.text
    status = other.get("/session/status")
    assert status.status_code == 503 and status.json["error"] == "temporarily_unavailable"
    assert down.test_client().get("/login").status_code == 200  # pages that need no database still answer


DATABASE_DOWN_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on port 1: connection refused
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"
HTMX = {"HX-Request": "true"}
JSON = {"Accept": "application/json"}


def _down_app_with_a_cached_session(make_app, clock, redis_url, cache_kind):
    """A session signed in on a healthy app whose registry entry the cache trusts, and an app on the same cache
    whose database is down: the session is served from the cache alone. "in-process" is the embedded default's
    cache; "redis" is a Redis cache inside its trusted window (its outbox was checked at this frozen moment);
    "redis down" leaves nothing to serve it (ask the database, which is down)."""
    prefix = f"gh-down-{random_suffix()}:"
    healthy = make_app(REDIS_URL=redis_url if cache_kind == "redis" else None, CACHE_KEY_PREFIX=prefix)
    with healthy.app_context():
        factories.account_with_users()
    signed_in = healthy.test_client()
    Auth(signed_in).login()
    assert signed_in.get("/").status_code == 200
    shared = {"CACHE": healthy.extensions["gatehouse.cache"]} if cache_kind != "redis down" else {}
    # PROPAGATE_EXCEPTIONS off: a fault inside an error handler is answered as in production (a bare 500).
    down = create_app(
        base_config(
            DATABASE_DOWN_URL,
            CLOCK=clock,
            REDIS_URL=CLOSED_REDIS_URL if cache_kind == "redis down" else None,
            PROPAGATE_EXCEPTIONS=False,
            **shared,
        )
    )
    client = down.test_client()
    client.set_cookie("gh_session", signed_in.get_cookie("gh_session").value)
    return client


def _assert_unavailable(response, *, as_json: bool):
    assert response.status_code == 503, response.text[:300]
    assert response.headers["Retry-After"] == "5"
    if as_json:
        assert response.json["error"] == "temporarily_unavailable"
    else:
        assert "Temporarily unavailable" in response.text and "Traceback" not in response.text
        assert 'action="/logout"' not in response.text  # no signed-in chrome: it would ask the database


CACHE_KINDS = ["in-process", "redis", "redis down"]


@pytest.mark.parametrize("cache_kind", CACHE_KINDS)
@pytest.mark.parametrize(
    ("method", "path", "headers", "as_json"),
    [
        ("GET", "/", {}, False),
        ("GET", "/account/devices", HTMX, False),
        ("GET", "/api/accounts/me/security", JSON, True),
        ("GET", "/no-such-page", {}, False),  # a 4xx page: its chrome needs the user's role
        ("PUT", "/account/devices", {}, False),  # 405, likewise
    ],
)
def test_database_down_with_a_session_is_a_503_in_every_fault_combination(
    make_app, clock, redis_url, cache_kind, method, path, headers, as_json
):
    client = _down_app_with_a_cached_session(make_app, clock, redis_url, cache_kind)
    _assert_unavailable(client.open(path, method=method, headers=headers), as_json=as_json)


@pytest.mark.parametrize("cache_kind", ["in-process", "redis"])
def test_a_trusted_cache_really_serves_the_session_while_the_database_is_down(make_app, clock, redis_url, cache_kind):
    """What makes the test above meaningful: its session was served from the cache, not refused for want of one."""
    client = _down_app_with_a_cached_session(make_app, clock, redis_url, cache_kind)
    status = client.get("/session/status")  # the banner's poll needs nothing but the session
    assert status.status_code == 200, status.text[:300]
    assert status.json["idle_seconds_left"] > 0


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_database_down_without_a_session_is_a_503_page(clock, redis_url, headers):
    # Limit windows of our own: the shared Redis holds every other test's sign-in attempts from this address.
    down = create_app(
        base_config(DATABASE_DOWN_URL, CLOCK=clock, REDIS_URL=redis_url, RATELIMIT_KEY_PREFIX=f"rl-{random_suffix()}")
    )
    client = down.test_client()
    token = csrf_token_from(client.get("/login").text)
    form = {"email": factories.OWNER_EMAIL, "password": factories.PASSWORD, "csrf_token": token}
    _assert_unavailable(client.post("/login", data=form, headers=headers), as_json=False)


def test_database_down_without_a_session_is_a_503_json(clock, redis_url):
    down = create_app(base_config(DATABASE_DOWN_URL, CLOCK=clock, REDIS_URL=redis_url))
    basic = base64.b64encode(f"gh_{random_suffix()}:secret".encode()).decode()
    response = down.test_client().post(
        "/internal/grants/verify", json={"grant": "x" * 43}, headers={"Authorization": f"Basic {basic}"}
    )
    _assert_unavailable(response, as_json=True)


@pytest.mark.parametrize("secret", [None, "", "short", "x" * 31])
def test_short_or_missing_secret_stops_start_up(secret, monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(base_config("sqlite:///" + str(tmp_path / "x.db"), SECRET_KEY=secret))


def test_bad_session_bounds_stop_start_up(tmp_path):
    with pytest.raises(ConfigError, match="SESSION_IDLE_MINUTES"):
        create_app(base_config("sqlite:///" + str(tmp_path / "x.db"), SESSION_IDLE_MINUTES=2000))


def test_sign_out_control_on_every_signed_in_page(client, owner):
    Auth(client).login()
    assert 'action="/logout"' in client.get("/").text
