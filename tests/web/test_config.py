"""Start-up settings an operator gives (issue 9 item 12): platform database URLs, the issuer, make run's ports."""

import json

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import ConfigError, database_uri
from app.extensions import db
from app.oauth.models import OAuthClient
from app.relying_party import demo as demo_app
from tests.conftest import base_config


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db.example:5432/gh", "postgresql+psycopg://u:p@db.example:5432/gh"),
        ("postgresql://u:p@db.example/gh?sslmode=require", "postgresql+psycopg://u:p@db.example/gh?sslmode=require"),
        ("postgresql+psycopg://u@db.example/gh", "postgresql+psycopg://u@db.example/gh"),
        ("sqlite:////var/lib/gh.db", "sqlite:////var/lib/gh.db"),
    ],
)
def test_platform_database_urls_run_on_psycopg_3(given, used):
    assert database_uri(given) == used


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_an_app_on_a_plain_postgresql_url_reaches_the_database(postgres_url, scheme):
    plain = scheme + postgres_url.split("://", 1)[1]
    app = create_app(base_config(plain))
    try:
        with app.app_context():
            assert db.session.execute(sa.text("select 1")).scalar() == 1
            assert db.engine.dialect.driver == "psycopg"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_production_without_issuer_stops_start_up(monkeypatch, tmp_path):
    monkeypatch.delenv("ISSUER", raising=False)
    with pytest.raises(ConfigError, match="ISSUER is not set"):
        create_app(base_config("sqlite:///" + str(tmp_path / "x.db"), GATEHOUSE_ENV="production"))


def test_production_issuer_is_used_exactly_without_trailing_slash(monkeypatch, tmp_path):
    monkeypatch.setenv("ISSUER", "https://login.example.com/")
    app = create_app(base_config("sqlite:///" + str(tmp_path / "x.db"), GATEHOUSE_ENV="production"))
    assert app.config["ISSUER"] == "https://login.example.com"


def test_development_issuer_follows_port(monkeypatch, tmp_path):
    monkeypatch.delenv("ISSUER", raising=False)
    monkeypatch.setenv("PORT", "8000")
    app = create_app(base_config("sqlite:///" + str(tmp_path / "x.db")))
    assert app.config["ISSUER"] == "http://localhost:8000"  # a name: WebAuthn refuses IP addresses (DESIGN §9)
    discovery = app.test_client().get("/.well-known/openid-configuration").json
    assert discovery["issuer"] == "http://localhost:8000"


def test_port_must_be_a_number(monkeypatch, tmp_path):
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(ConfigError, match="PORT must be a whole number"):
        create_app(base_config("sqlite:///" + str(tmp_path / "x.db")))


def _demo_redirect_uris(app, tmp_path) -> list[str]:
    saved = json.loads((tmp_path / "demo-credentials.json").read_text())
    with app.app_context():
        return OAuthClient.by_client_id(saved["client"]["client_id"]).redirect_uris


def test_demo_client_is_registered_for_demo_port_and_moves_with_it(make_app, monkeypatch, tmp_path):
    monkeypatch.delenv("DEMO_URL", raising=False)
    app = make_app()
    app.instance_path = str(tmp_path)
    monkeypatch.setenv("DEMO_PORT", "8001")
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
    assert _demo_redirect_uris(app, tmp_path) == ["http://127.0.0.1:8001/auth/callback"]
    monkeypatch.setenv("DEMO_PORT", "8002")
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
    assert _demo_redirect_uris(app, tmp_path) == ["http://127.0.0.1:8002/auth/callback"]


def test_demo_app_defaults_follow_port_and_demo_port(monkeypatch, tmp_path):
    for name in ("GATEHOUSE_ISSUER", "DEMO_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORT", "8000")
    monkeypatch.setenv("DEMO_PORT", "8001")
    settings = demo_app._settings({"INSTANCE_PATH": str(tmp_path), "DEMO_CLIENT_ID": "c", "DEMO_CLIENT_SECRET": "s"})
    assert settings["GATEHOUSE_ISSUER"] == "http://localhost:8000"
    assert settings["DEMO_URL"] == "http://127.0.0.1:8001"  # another site than the portal's: no shared cookie
