"""The demo client app, built on the kit: `gunicorn app.relying_party.demo:app` beside the portal (DESIGN §6).

Settings come from the environment (or `create_app(config)`): GATEHOUSE_ISSUER, DEMO_URL, DEMO_CLIENT_ID and
DEMO_CLIENT_SECRET (else instance/demo-credentials.json, written by `flask --app wsgi demo`), DEMO_SECRET_KEY (else
instance/demo_secret_key, written once so every worker shares it), REDIS_URL (revoked sids and seen logout tokens
shared by every worker; without it, run one worker so that a back-channel logout reaches the whole app at once).
"""

import functools
import json
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, render_template

from app.relying_party import ACR_MFA, Gatehouse, current_user, login_required
from app.relying_party.stores import RedisStore

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = ROOT / "instance"
CREDENTIALS_FILE = "demo-credentials.json"
SECRET_KEY_FILE = "demo_secret_key"
# The portal on localhost:PORT (a name: WebAuthn refuses IP addresses) and this app on 127.0.0.1:DEMO_PORT, another
# site, as `make run` starts them.
DEFAULT_PORT, DEFAULT_DEMO_PORT = "5000", "5001"
# form-action covers the redirect after a form post too: sign-out continues at the portal.
CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self' {}"
)


class DemoConfigError(RuntimeError):
    """The demo app cannot start: its client credentials are missing."""


def _settings(config: dict) -> dict:
    names = ("GATEHOUSE_ISSUER", "DEMO_URL", "DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_SECRET_KEY", "REDIS_URL")
    defaults = {
        "GATEHOUSE_ISSUER": f"http://localhost:{os.environ.get('PORT') or DEFAULT_PORT}",
        "DEMO_URL": f"http://127.0.0.1:{os.environ.get('DEMO_PORT') or DEFAULT_DEMO_PORT}",
    }
    settings = {name: os.environ.get(name) or defaults.get(name) for name in names}
    settings |= {name: value for name, value in config.items() if value is not None}
    instance = Path(settings.get("INSTANCE_PATH") or INSTANCE)
    if not (settings["DEMO_CLIENT_ID"] and settings["DEMO_CLIENT_SECRET"]):
        settings["DEMO_CLIENT_ID"], settings["DEMO_CLIENT_SECRET"] = _saved_credentials(instance)
    settings["DEMO_SECRET_KEY"] = settings["DEMO_SECRET_KEY"] or _shared_secret_key(instance)
    return settings


def _saved_credentials(instance: Path) -> tuple[str, str]:
    path = instance / CREDENTIALS_FILE
    try:
        client = json.loads(path.read_text())["client"]
        return client["client_id"], client["client_secret"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DemoConfigError(
            f"No demo client credentials: set DEMO_CLIENT_ID and DEMO_CLIENT_SECRET, or run "
            f"'flask --app wsgi demo' (make run does) to write {path}."
        ) from exc


def _shared_secret_key(instance: Path) -> str:
    """Written once, atomically (link fails if another worker won the race), then read by every worker."""
    path = instance / SECRET_KEY_FILE
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        draft = instance / f".{SECRET_KEY_FILE}.{os.getpid()}"
        draft.write_text(secrets.token_urlsafe(48))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def create_app(config: dict | None = None) -> Flask:
    """The demo app; config may also carry GATEHOUSE_CLOCK, GATEHOUSE_STORE and GATEHOUSE_CACHE (tests)."""
    config = config or {}
    settings = _settings(config)
    app = Flask(__name__, static_folder=str(ROOT / "static"), instance_path=str(INSTANCE))
    secure = settings["DEMO_URL"].startswith("https://")
    app.config.update(SECRET_KEY=settings["DEMO_SECRET_KEY"], SESSION_COOKIE_NAME="demo_session",
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
                      TESTING=bool(config.get("TESTING")))  # fmt: skip
    store = config.get("GATEHOUSE_STORE") or (RedisStore(settings["REDIS_URL"]) if settings["REDIS_URL"] else None)
    options: dict[str, Any] = {
        "clock": config.get("GATEHOUSE_CLOCK"),
        "store": store,
        "cache": config.get("GATEHOUSE_CACHE"),
    }
    Gatehouse(app, issuer=settings["GATEHOUSE_ISSUER"], client_id=settings["DEMO_CLIENT_ID"],
              client_secret=settings["DEMO_CLIENT_SECRET"], name="demo", base_url=settings["DEMO_URL"],
              layout="demo/base.html", **{k: v for k, v in options.items() if v is not None})  # fmt: skip
    _routes(app, CSP.format(settings["GATEHOUSE_ISSUER"].rstrip("/")))
    return app


def _routes(app: Flask, csp: str) -> None:
    @app.get("/")
    def home():
        return render_template("demo/home.html", user=current_user())

    @app.get("/account")
    @login_required
    def account():
        return render_template("demo/account.html", user=current_user())

    @app.get("/billing")
    @login_required(acr=ACR_MFA)  # step-up (DESIGN §9): only after the second step
    def billing():
        return render_template("demo/billing.html", user=current_user())

    @app.errorhandler(503)
    def unavailable(_error):
        return render_template("demo/unavailable.html"), 503

    @app.after_request
    def headers(response):
        response.headers.setdefault("Cache-Control", "no-store")  # signed-in pages never come back from a cache
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response


@functools.cache
def _wsgi_app() -> Flask:
    return create_app()


def __getattr__(name: str):
    """`app` is built on first use, so importing this module never needs the credentials."""
    if name == "app":
        return _wsgi_app()
    raise AttributeError(name)
