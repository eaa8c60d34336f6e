"""Gatehouse: the account security portal and OAuth 2.0 / OpenID Connect provider."""

import logging
from pathlib import Path

from flask import Flask
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from werkzeug.middleware.proxy_fix import ProxyFix

from app import config as settings
from app.cache import CACHE_EXTENSION_KEY, build_cache, install_commit_hooks
from app.clock import CLOCK_EXTENSION_KEY, SystemClock
from app.extensions import csrf, db, migrate
from app.security.passwords import install_hasher
from app.web.requests import PortalRequest

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUEST_BYTES = 1024 * 1024


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config → extensions → oauth → blueprints → errors → headers → WSGI middleware → CLI."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.request_class = PortalRequest
    setup_config(app, config)
    setup_extensions(app)
    setup_oauth(app)
    setup_blueprints(app)
    setup_request_pipeline(app)
    setup_middleware(app)
    setup_cli(app)
    return app


def setup_config(app: Flask, overrides: dict | None) -> None:
    app.config.update(settings.from_environment(app.instance_path))
    app.config.update(overrides or {})
    settings.finalize(app.config)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def setup_extensions(app: Flask) -> None:
    from app.security.origin import init_origin_check
    from app.security.ratelimit import init_rate_limits
    from app.sessions.codec import SignedCookieStore
    from app.sessions.devices import GeoLocator
    from app.web.auth import STORE_EXTENSION_KEY, init_auth
    from app.web.two_step_required import init_two_step_required

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    install_commit_hooks(FlaskSQLAlchemySession)
    app.extensions[CLOCK_EXTENSION_KEY] = app.config.get("CLOCK") or SystemClock()
    app.extensions[CACHE_EXTENSION_KEY] = app.config.get("CACHE") or build_cache(app.config)
    install_hasher(app)
    app.extensions[STORE_EXTENSION_KEY] = SignedCookieStore(
        app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"]
    )
    app.extensions["gatehouse.geoip"] = GeoLocator(app.config["GEOIP_DATABASE"])
    init_rate_limits(app)
    # Cross-site posts are refused before anything else, then the session is loaded.
    init_origin_check(app)
    init_auth(app)
    init_two_step_required(app)  # after the session is loaded: an owner's requirement holds people at set-up


def setup_oauth(app: Flask) -> None:
    from app.oauth.grants import on_sessions_ended
    from app.oauth.server import init_server
    from app.sessions.signals import session_ended

    init_server(app)
    # For this app only (sender=app): blinker keeps one connection per (receiver, sender), so building many apps
    # in one process never subscribes an app twice, and an app that is gone is disconnected with it.
    session_ended.connect(on_sessions_ended, sender=app)


def setup_blueprints(app: Flask) -> None:
    from app.accounts import account_policy_views, email_change_views, not_me_views, passkey_views, reset_views
    from app.accounts import email_change_models as _email_change_models  # noqa: F401 (tables for migrations)
    from app.accounts import views as accounts
    from app.audit import views as activity
    from app.client_api import views as client_api
    from app.factors import models as _factor_models  # noqa: F401 (tables for migrations and queries)
    from app.factors import views as factors
    from app.mail import models as _mail_models  # noqa: F401 (the outbox table, written by app.mail.services)
    from app.mail import views as dev_mail
    from app.oauth import apps_views
    from app.oauth import views as oauth
    from app.passkeys import models as _passkey_models  # noqa: F401
    from app.passkeys import views as passkeys
    from app.people import models as _people_models  # noqa: F401 (tables for migrations)
    from app.people import views as people
    from app.sessions import views as sessions

    app.register_blueprint(accounts.bp)
    app.register_blueprint(passkey_views.bp)
    app.register_blueprint(reset_views.bp)
    app.register_blueprint(not_me_views.bp)
    app.register_blueprint(email_change_views.bp)
    app.register_blueprint(sessions.bp)
    app.register_blueprint(account_policy_views.bp)
    app.register_blueprint(factors.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(apps_views.bp)
    app.register_blueprint(client_api.bp)
    app.register_blueprint(passkeys.bp)
    if app.config["DEVELOPMENT"]:  # DESIGN §10: the mailbox page does not exist in production
        app.register_blueprint(dev_mail.bp)
    app.register_blueprint(activity.bp)
    app.register_blueprint(people.bp)


def setup_request_pipeline(app: Flask) -> None:
    from app.security.headers import init_headers
    from app.web.errors import init_errors
    from app.web.templating import init_templating

    init_templating(app)
    init_errors(app)
    init_headers(app)


def setup_middleware(app: Flask) -> None:
    """Wrapping wsgi_app is Flask's documented way to add WSGI middleware (its stubs declare it a method). ProxyFix
    goes outermost, so that the lane (app/web/lane.py) sees the address Flask would."""
    from app.web.lane import Lane

    app.wsgi_app = Lane(app, app.wsgi_app)  # type: ignore[method-assign]
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count
        )


def setup_cli(app: Flask) -> None:
    from app import demo
    from app.accounts import cli as accounts_cli
    from app.oauth import cli as oauth_cli
    from app.outbox import cli as outbox_cli

    for module in (accounts_cli, oauth_cli, outbox_cli, demo):
        module.init_cli(app)
