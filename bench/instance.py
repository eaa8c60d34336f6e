"""A throwaway Gatehouse instance: fresh database (SQLite, or a given URL), random secret, one owner."""

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.errors import BenchError

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ACCOUNT = "Bench"
EMAIL = "bench@example.test"
CLI_TIMEOUT_SECONDS = 120


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

    @property
    def cache(self) -> str:
        url = self.env.get("REDIS_URL")
        if not url:
            return "in-process (one per gunicorn worker; REDIS_URL not set)"
        parts = urlsplit(url)  # host and port only: the URL may carry a password
        return f"redis at {parts.hostname}:{parts.port or 6379}"


def create(directory: Path, database_url: str | None = None, **settings: str) -> Instance:
    """Migrate a new database (SQLite in directory by default) and add the Bench account with its owner.

    settings are extra environment variables for this instance only (e.g. TOKEN_RATE_LIMIT).
    """
    env = _server_env(directory) | {"DATABASE_URL": database_url or _sqlite_url(directory)} | settings
    instance = Instance(env, EMAIL, secrets.token_urlsafe(18))
    _flask(instance.env, "db", "upgrade")
    _flask(instance.env, "accounts", "create", "--name", ACCOUNT)
    owner = ["--account", ACCOUNT, "--email", EMAIL, "--name", "Bench", "--role", "owner", "--password-stdin"]
    _flask(instance.env, "users", "create", *owner, stdin=instance.password + "\n")
    return instance


def register_client(instance: Instance, redirect_uri: str) -> OAuthClient:
    """A confidential first-party client (no consent page), through the documented CLI."""
    out = _flask(
        instance.env, "clients", "create", "--name", "Bench RP", "--redirect-uri", redirect_uri, "--first-party"
    )
    try:
        shown = json.loads(out)
        return OAuthClient(shown["client_id"], shown["client_secret"], redirect_uri)
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"flask clients create: unexpected output ({type(exc).__name__})") from exc


def _server_env(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY_FALLBACKS"}
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
