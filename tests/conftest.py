"""Fixtures: a migrated database per backend, apps on a frozen clock, and real sign-in forms."""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.clock import FrozenClock
from app.extensions import db
from tests import factories

IN_CI = os.environ.get("CI") == "true"
SECRET_KEY = "test-secret-key-" + "x" * 32
CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def pytest_configure(config) -> None:
    from tests import log_scan

    config.gatehouse_log_scan = log_scan.install()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Catalogue #32 over the whole run: a secret value issued by the app must never reach a log line."""
    scan = getattr(session.config, "gatehouse_log_scan", None)
    leaks = (scan.leaks() if scan else []) + getattr(session.config, "gatehouse_worker_leaks", [])
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # a pytest-xdist worker: its exit status is not the run's, so the controller judges
        worker_output["gatehouse_leaks"] = leaks
        return
    if leaks:
        print("\nissued secret values found in the logs (catalogue #32):\n  " + "\n  ".join(leaks[:20]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist's controller collects each worker's log-scan findings (see pytest_sessionfinish)."""
    leaks = node.workeroutput.get("gatehouse_leaks", []) if hasattr(node, "workeroutput") else []
    node.config.gatehouse_worker_leaks = getattr(node.config, "gatehouse_worker_leaks", []) + leaks


def need(condition: bool, reason: str) -> None:
    """Skip a test whose service is missing, except in CI where every test must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: service-backed tests must run)")
    pytest.skip(reason)


def base_config(database_url: str, **overrides) -> dict:
    return {
        "TESTING": True,
        "GATEHOUSE_ENV": "development",
        "SECRET_KEY": SECRET_KEY,
        "SECRET_KEY_FALLBACKS": [],
        "DATABASE_URL": database_url,
        "REDIS_URL": None,
        "ARGON2_FAST": True,
        "GEOIP_DATABASE": None,
        "TRUSTED_PROXY_COUNT": 0,
        # Parallel test processes share one Redis: their sign-in limits must not count each other's attempts.
        "RATELIMIT_KEY_PREFIX": f"gh-rl-{os.getpid()}",
        **overrides,
    }


def _admin_engine():
    base = sa.make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    return base, sa.create_engine(base, isolation_level="AUTOCOMMIT")


def _create_postgres_database(worker: str) -> str | None:
    """A database of this run's own (several runs may share one server), dropped when the run ends."""
    if not os.environ.get("TEST_DATABASE_URL"):
        return None
    base, admin = _admin_engine()
    name = f"gatehouse_test_{worker}_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(url: str) -> None:
    _, admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def fresh_database(like_url: str, tmp_path) -> Iterator[str]:
    """An empty database on the same backend as like_url (for tests that run migrations themselves), dropped after."""
    if not like_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    base, admin = _admin_engine()
    name = f"gatehouse_fresh_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        _drop_postgres_database(url)


def _migrate(url: str) -> None:
    app = create_app(base_config(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory, worker_id) -> dict[str, str | None]:
    """Each backend migrated to head once per run: every test uses the migrated schema."""
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'gatehouse.db'}"
    _migrate(sqlite_url)
    postgres_url = _create_postgres_database(worker_id)
    if postgres_url:
        _migrate(postgres_url)
    yield {"sqlite": sqlite_url, "postgresql": postgres_url}
    if postgres_url:
        _drop_postgres_database(postgres_url)


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, database_urls) -> str:
    url = database_urls[request.param]
    need(url is not None, "TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    return url


@pytest.fixture
def postgres_url(database_urls) -> str:
    need(database_urls["postgresql"] is not None, "TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    return database_urls["postgresql"]


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    need(bool(url), "REDIS_URL is not set: Redis tests skipped")
    return url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def make_app(database_url, clock):
    """Build apps on the test database and the shared frozen clock; empty every table afterwards."""
    apps: list[Flask] = []

    def build(**overrides) -> Flask:
        app = create_app(base_config(database_url, CLOCK=clock, **overrides))
        apps.append(app)
        return app

    yield build
    for app in apps[:1]:
        with app.app_context():
            db.session.remove()
            with db.engine.begin() as conn:
                for table in reversed(db.metadata.sorted_tables):
                    conn.execute(table.delete())
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


class Auth:
    """Sign in and out through the real forms, CSRF included."""

    def __init__(self, client):
        self.client = client

    def login(self, email=factories.OWNER_EMAIL, password=factories.PASSWORD, **headers):
        page = self.client.get("/login", headers=headers)
        return self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)},
            headers=headers,
        )

    def logout(self):
        page = self.client.get("/")
        return self.client.post("/logout", data={"csrf_token": csrf_token_from(page.text)})


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


@pytest.fixture
def owner(app):
    """The Demo-like account with an owner (and a member), committed."""
    with app.app_context():
        return factories.account_with_users()


def random_suffix() -> str:
    return secrets.token_hex(4)


CACHE_KINDS = ["in-process", "redis"]


def app_with_cache(request, make_app, **overrides) -> Flask:
    """For a fixture parametrized over CACHE_KINDS: an app whose cache and rate limits are this process's
    ("in-process"), or a Redis under a key prefix of its own ("redis")."""
    if request.param == "in-process":
        return make_app(**overrides)
    prefix = f"gh-test-{random_suffix()}:"
    return make_app(REDIS_URL=request.getfixturevalue("redis_url"), CACHE_KEY_PREFIX=prefix,
                    RATELIMIT_KEY_PREFIX=prefix + "rl", **overrides)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a spare port, so killing it never touches the shared one."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)  # waiting for a process to start, not standing in for time
        raise RuntimeError("private redis-server did not start")

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=5)

    def signal(self, sig):
        self.process.send_signal(sig)


@pytest.fixture
def private_redis():
    need(shutil.which("redis-server") is not None, "redis-server is not installed: Redis fault tests skipped")
    server = PrivateRedis().start()
    yield server
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)
        server.kill()


# The portal as `make run` serves it, on http://localhost:5000: WebAuthn refuses IP-literal RP IDs, so passkey tests
# run on this origin.
ORIGIN = "http://localhost:5000"


@pytest.fixture
def web_app(make_app) -> Flask:
    """An app on ORIGIN with the example account's people."""
    app = make_app(ISSUER=ORIGIN)
    with app.app_context():
        factories.account_with_users()
    return app
