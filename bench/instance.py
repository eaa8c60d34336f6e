"""A throwaway Gatehouse instance: fresh database (SQLite, or a given URL), random secret, one owner, one client."""

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ACCOUNT = "Bench"
EMAIL = "bench@example.test"
CLI_TIMEOUT_SECONDS = 120
REDIRECT_URI = "https://rp.bench.test/callback"
# Bench-only settings, the same for every instance. The token and internal limits (20 and 6,000 a minute per client
# and address) would answer 429 at once: raised, never turned off, so every request still pays for its check. A
# signed-in session idles out after 30 minutes (and its grants with it): a long run must outlive that.
SETTINGS = {"TOKEN_RATE_LIMIT": "1000000 per minute", "INTERNAL_RATE_LIMIT": "10000000 per minute",
            "SESSION_IDLE_MINUTES": "720"}  # fmt: skip
# Never inherited from the caller's environment: each instance names its own database and cache.
OWN_SETTINGS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FALLBACKS")


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    secret: str
    redirect_uri: str


@dataclass(frozen=True)
class Instance:
    env: dict[str, str]
    email: str
    password: str
    client: OAuthClient


def create(directory: Path, database_url: str | None = None, redis_url: str | None = None) -> Instance:
    """Migrate a new database (SQLite in directory by default), add the Bench account with its owner and register
    the Bench client; with redis_url, the instance caches and counts its limits in Redis, else in each process."""
    directory.mkdir(parents=True, exist_ok=True)
    env = _server_env() | {"DATABASE_URL": database_url or _sqlite_url(directory)} | SETTINGS
    if redis_url:
        env["REDIS_URL"] = redis_url
    password = secrets.token_urlsafe(18)
    _flask(env, "db", "upgrade")
    _flask(env, "accounts", "create", "--name", ACCOUNT)
    owner = ["--account", ACCOUNT, "--email", EMAIL, "--name", "Bench", "--role", "owner", "--password-stdin"]
    _flask(env, "users", "create", *owner, stdin=password + "\n")
    return Instance(env, EMAIL, password, _register_client(env))


def _register_client(env: dict[str, str]) -> OAuthClient:
    """A confidential first-party client (no consent page), through the documented CLI."""
    out = _flask(env, "clients", "create", "--name", "Bench RP", "--redirect-uri", REDIRECT_URI, "--first-party")
    try:
        shown = json.loads(out)
        return OAuthClient(shown["client_id"], shown["client_secret"], REDIRECT_URI)
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"flask clients create: unexpected output ({type(exc).__name__})") from exc


def _server_env() -> dict[str, str]:
    """Development mode: the bench speaks plain http, where the production cookie names (__Host-, Secure) would not
    come back from the sign-in; the only other difference on these paths is the HSTS header."""
    env = {key: value for key, value in os.environ.items() if key not in OWN_SETTINGS}
    env.update(GATEHOUSE_ENV="development", SECRET_KEY=secrets.token_urlsafe(36))  # 48 characters
    return env


def _sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'gatehouse.db'}"


def _flask(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    command = [str(BIN / "flask"), "--app", "wsgi", *args]
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"flask {' '.join(args)} timed out") from exc
    if done.returncode != 0:
        raise BenchError(f"flask {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout
