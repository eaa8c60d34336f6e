"""Two real gunicorn instances and the worker on one PostgreSQL and one Redis (DESIGN §1: "two instances behind a
load balancer … behave as one"), driven over HTTP with `requests` as a browser and a client app would. Instance B
reaches Redis through a proxy in this process (tests/redis_proxy.py), so a test can slow or break B's link alone.

One cluster per module keeps the wall time modest: starting gunicorn costs about a second per process. Each test
makes its own account and users, so tests never see each other's sessions. The Redis is a private redis-server,
so pausing or killing it touches nothing else; the database is this run's own, migrated to head.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app import create_app
from app.accounts import services as accounts
from app.accounts.models import ROLE_MEMBER, ROLE_OWNER
from app.clock import now
from app.extensions import db
from app.oauth.clients import register_client
from tests.conftest import (
    SECRET_KEY,
    PrivateRedis,
    _create_postgres_database,
    _drop_postgres_database,
    _migrate,
    base_config,
    csrf_token_from,
    free_port,
    need,
    random_suffix,
)
from tests.factories import PASSWORD
from tests.helpers import PORTAL_COOKIE
from tests.oauth.conftest import REDIRECT_URI, pkce, query_of
from tests.redis_proxy import RedisProxy

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT_SECONDS = 10  # for each HTTP call a test makes
START_TIMEOUT_SECONDS = 30  # for a process to answer; generous on a loaded 2-core machine


class Process:
    """A server process in its own process group (gunicorn's master and its worker die together)."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)  # fmt: skip

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class Instance(Process):
    """`gunicorn wsgi:app` on a free port, as `make run` serves it."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(BIN / "gunicorn"), "--no-control-socket", "--workers", "1", "--threads", "4",
                "--bind", f"127.0.0.1:{self.port}", "--access-logfile", "-", "wsgi:app"]  # fmt: skip
        super().__init__(name, argv, env, log_dir)

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.alive(), f"{self.name} exited:\n{self.log_tail()}"
            try:
                if requests.get(self.url + "/login", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or still importing the app
                pass
            time.sleep(0.1)  # waiting for a process to start, not standing in for time
        raise AssertionError(f"{self.name} did not answer within {START_TIMEOUT_SECONDS} s:\n{self.log_tail()}")


@dataclass(frozen=True)
class People:
    owner: str
    member: str
    account_id: int


@dataclass(frozen=True)
class RelyingParty:
    client_id: str
    secret: str

    def basic(self) -> tuple[str, str]:
        return self.client_id, self.secret


class Cluster:
    """Instances A and B, the worker, one Redis and one PostgreSQL, plus an app in this process for test data."""

    def __init__(self, database_url: str, redis: PrivateRedis, log_dir: Path):
        self.redis = redis
        self.proxy = RedisProxy(redis.port)  # B's link to Redis
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")},
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "SECRET_KEY": SECRET_KEY,
            "GATEHOUSE_ENV": "development",
            # One account's and one address's sign-ins are limited; every test here signs in from 127.0.0.1.
            "LOGIN_RATE_LIMIT_PER_IP": "10000 per minute",
            "TOKEN_RATE_LIMIT": "10000 per minute",
        }
        self.a = Instance("a", self.env, log_dir)
        self.b = Instance("b", self.env, log_dir)
        self.env["ISSUER"] = self.a.url  # the load balancer's address, the same for both
        self.b.env = {**self.env, "REDIS_URL": self.proxy.url}
        self.worker = Process("worker", [str(BIN / "flask"), "--app", "wsgi", "worker", "--interval", "0.1"],
                              self.env, log_dir)  # fmt: skip
        self.data = create_app(base_config(database_url, REDIS_URL=redis.url, ISSUER=self.a.url))

    def start(self) -> None:
        for process in (self.a, self.b, self.worker):
            process.start()

    def heal(self) -> None:
        """Undo what a test did to the cluster: Redis running again, B's link whole, every process up."""
        self.proxy.resume()
        if self.redis.process.poll() is None:
            self.redis.signal(signal.SIGCONT)
        else:
            self.redis.start()
        for process in (self.a, self.b, self.worker):
            if not process.alive():
                process.start()

    def stop(self) -> None:
        for process in (self.a, self.b, self.worker):
            process.kill(signal.SIGTERM)
        self.proxy.close()
        with self.data.app_context():
            db.engine.dispose()

    def people(self) -> People:
        suffix = random_suffix()
        with self.data.app_context():
            account = accounts.create_account(f"Scale-out {suffix}", now())
            owner = accounts.create_user(account, f"owner-{suffix}@example.test", "Owner", ROLE_OWNER, PASSWORD, now())
            member = accounts.create_user(account, f"member-{suffix}@example.test", "Member", ROLE_MEMBER, PASSWORD,
                                          now())  # fmt: skip
            db.session.commit()
            return People(owner.email, member.email, account.id)

    def client_app(self) -> RelyingParty:
        with self.data.app_context():
            registered = register_client("Scale-out App", [REDIRECT_URI], now(), first_party=True)
            db.session.commit()
            return RelyingParty(registered.client.client_id, registered.secret)

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        """A `flask --app wsgi …` command, as an operator runs it beside the instances."""
        return subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip


# Every secret value the servers gave this module (cookies, codes, tokens): none may appear in their logs
# (catalogue #32, here for real gunicorn processes and the worker; tests/log_scan.py covers the in-process apps).
ISSUED: set[str] = set()
TOKEN_FIELDS = ("access_token", "refresh_token", "id_token", "grant_token")


def call(method: str, url: str, **kwargs) -> requests.Response:
    """Every request of the suite: never a 5xx, whatever a test did to Redis."""
    session = kwargs.pop("session", None) or requests
    response = session.request(method, url, timeout=TIMEOUT_SECONDS, allow_redirects=False, **kwargs)
    assert response.status_code < 500, f"{method} {url} answered {response.status_code}: {response.text[:300]}"
    ISSUED.update(cookie.value for cookie in response.cookies if cookie.value)
    if "code=" in response.headers.get("Location", ""):
        ISSUED.add(query_of(response.headers["Location"])["code"])
    if response.headers.get("Content-Type", "").startswith("application/json") and isinstance(response.json(), dict):
        ISSUED.update(str(response.json()[field]) for field in TOKEN_FIELDS if field in response.json())
    return response


def leaked(processes: list[Process]) -> list[str]:
    logs = {process.name: process.log.read_text(errors="replace") for process in processes if process.log.exists()}
    return [f"{value[:12]}… in the log of {name}" for value in ISSUED for name, text in logs.items() if value in text]


class Browser:
    """One device: a requests.Session that signs in through the real form (CSRF token and all)."""

    def __init__(self):
        self.session = requests.Session()

    def get(self, url: str) -> requests.Response:
        return call("GET", url, session=self.session)

    def post_form(self, page_url: str, action_url: str, **fields) -> requests.Response:
        """Post the form of page_url with its CSRF token, as the browser would."""
        token = csrf_token_from(self.get(page_url).text)
        return call("POST", action_url, session=self.session, data={"csrf_token": token, **fields})

    def sign_in(self, base_url: str, email: str, password: str = PASSWORD) -> "Browser":
        answer = self.post_form(base_url + "/login", base_url + "/login", email=email, password=password)
        assert answer.status_code in (302, 303) and "/login" not in answer.headers["Location"], answer.text[:300]
        return self

    @property
    def cookie(self) -> str:
        return self.session.cookies[PORTAL_COOKIE]

    def sign_out(self, base_url: str) -> None:
        assert self.post_form(base_url + "/", base_url + "/logout").status_code in (302, 303)

    def grant(self, instance: Instance, rp: RelyingParty) -> dict:
        """The authorization-code flow with PKCE on instance: the token response (grant_token included)."""
        verifier, challenge = pkce()
        query = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": REDIRECT_URI,
                 "scope": "openid profile email", "state": "s", "nonce": "n", "code_challenge": challenge,
                 "code_challenge_method": "S256"}  # fmt: skip
        redirect = call("GET", instance.url + "/oauth/authorize", session=self.session, params=query)
        code = query_of(redirect.headers["Location"])["code"]
        tokens = call("POST", instance.url + "/oauth/token", auth=rp.basic(), data={"grant_type": "authorization_code",
                      "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT_URI})  # fmt: skip
        assert tokens.status_code == 200, tokens.text
        return tokens.json()


def page_with_cookie(instance: Instance, cookie: str) -> requests.Response:
    """A request carrying a (possibly revoked) portal cookie, as a thief or a stale tab would send it."""
    return call("GET", instance.url + "/", cookies={PORTAL_COOKIE: cookie})


def refused(instance: Instance, cookie: str) -> bool:
    response = page_with_cookie(instance, cookie)
    if response.status_code == 200:
        return False
    assert response.status_code in (302, 303), response.status_code
    return re.match(r"/login\?reason=", response.headers["Location"]) is not None


def verify(instance: Instance, rp: RelyingParty, grant_token: str) -> requests.Response:
    return call("POST", instance.url + "/internal/grants/verify", auth=rp.basic(), json={"grant": grant_token})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, worker_id) -> Iterator[Cluster]:
    need(bool(os.environ.get("TEST_DATABASE_URL")), "TEST_DATABASE_URL is not set: scale-out tests skipped")
    need(shutil.which("redis-server") is not None, "redis-server is not installed: scale-out tests skipped")
    need((BIN / "gunicorn").exists(), "gunicorn is not installed in the venv: scale-out tests skipped")
    database_url = _create_postgres_database(f"scaleout_{worker_id}")
    _migrate(database_url)
    redis = PrivateRedis().start()
    built = Cluster(database_url, redis, tmp_path_factory.mktemp("scaleout"))
    ISSUED.clear()
    try:
        built.start()
        yield built
    finally:
        built.stop()
        if redis.process.poll() is None:
            redis.signal(signal.SIGCONT)
            redis.kill()
        _drop_postgres_database(database_url)
    assert not leaked([built.a, built.b, built.worker]), leaked([built.a, built.b, built.worker])


@pytest.fixture
def healthy(cluster) -> Iterator[Cluster]:
    """The shared cluster, whole again after a test that paused or killed part of it."""
    cluster.heal()
    yield cluster
    cluster.heal()
