"""The demo app's settings, pages and headers, without a portal (a fresh visitor never calls it)."""

import json
import stat

import pytest
from flask import Flask

from app.relying_party import Gatehouse
from app.relying_party import demo as demo_module
from app.relying_party.demo import DemoConfigError, create_app

ISSUER = "http://127.0.0.1:9"  # nothing listens: these pages must not need the portal


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("GATEHOUSE_ISSUER", "DEMO_URL", "DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


def write_credentials(folder) -> None:
    client = {"client_id": "gh_demo", "client_secret": "secret", "redirect_uris": []}
    (folder / "demo-credentials.json").write_text(json.dumps({"client": client}))


def test_without_credentials_it_says_how_to_get_them(tmp_path):
    with pytest.raises(DemoConfigError, match="flask --app wsgi demo"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_credentials_and_a_shared_secret_key_come_from_the_instance_folder(tmp_path):
    write_credentials(tmp_path)
    first, second = create_app({"INSTANCE_PATH": str(tmp_path)}), create_app({"INSTANCE_PATH": str(tmp_path)})
    assert first.extensions["gatehouse_rp"].client_id == "gh_demo"
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32  # every worker signs alike
    assert stat.S_IMODE((tmp_path / "demo_secret_key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-credentials.json", "demo_secret_key"]


def test_the_wsgi_app_is_built_on_first_use_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_CLIENT_ID", "gh_env")
    monkeypatch.setenv("DEMO_CLIENT_SECRET", "secret")
    monkeypatch.setenv("DEMO_SECRET_KEY", "k" * 48)
    demo_module._wsgi_app.cache_clear()
    try:
        assert isinstance(demo_module.app, Flask) and demo_module.app is demo_module.app
        assert demo_module.app.extensions["gatehouse_rp"].client_id == "gh_env"
    finally:
        demo_module._wsgi_app.cache_clear()
    with pytest.raises(AttributeError):
        demo_module.missing  # noqa: B018


@pytest.fixture
def demo_app(tmp_path) -> Flask:
    write_credentials(tmp_path)
    return create_app({"INSTANCE_PATH": str(tmp_path), "GATEHOUSE_ISSUER": ISSUER, "TESTING": True})


def test_a_fresh_visitor_sees_the_signed_out_home_page(demo_app):
    page = demo_app.test_client().get("/")
    assert page.status_code == 200 and "You are signed out" in page.text and 'href="/auth/login"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Content-Security-Policy"].endswith(f"form-action 'self' {ISSUER}")
    assert "<script" not in page.text


def test_the_protected_page_sends_a_signed_out_visitor_to_sign_in(demo_app):
    answer = demo_app.test_client().get("/account?tab=1")
    assert answer.status_code == 302 and answer.headers["Location"] == "/auth/login?next=/account?tab%3D1"


def test_sign_in_says_so_when_the_portal_cannot_be_reached(demo_app):
    browser = demo_app.test_client()
    answer = browser.get("/auth/login", follow_redirects=True)
    assert "Gatehouse cannot be reached" in answer.text


def test_over_https_the_cookies_are_secure(tmp_path):
    write_credentials(tmp_path)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "GATEHOUSE_ISSUER": ISSUER, "DEMO_URL": "https://demo.example"})
    answer = app.test_client().get("/auth/login", base_url="https://demo.example")
    cookies = answer.headers.getlist("Set-Cookie")
    assert all("Secure" in c for c in cookies) and {c.split("=")[0] for c in cookies} == {"demo_did", "demo_session"}


def test_the_kit_needs_a_secret_key_and_a_lax_session_cookie():
    options = {"issuer": ISSUER, "client_id": "c", "client_secret": "s"}
    with pytest.raises(RuntimeError, match="secret_key"):
        Gatehouse(Flask("shop"), **options)
    app = Flask("shop")
    app.secret_key, app.config["SESSION_COOKIE_SAMESITE"] = "k" * 32, "Strict"
    with pytest.raises(RuntimeError, match="Strict"):
        Gatehouse(app, **options)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    assert Gatehouse(app, **options).device_cookie == "shop_did"
