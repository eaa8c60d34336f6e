"""A throwaway Gatehouse instance: fresh SQLite database, random secret, one owner."""

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


def create(directory: Path) -> Instance:
    """Migrate a new database in directory and add the Bench account with its owner."""
    instance = Instance(_server_env(directory), EMAIL, secrets.token_urlsafe(18))
    _flask(instance.env, "db", "upgrade")
    _flask(instance.env, "accounts", "create", "--name", ACCOUNT)
    owner = ["--account", ACCOUNT, "--email", EMAIL, "--name", "Bench", "--role", "owner", "--password-stdin"]
    _flask(instance.env, "users", "create", *owner, stdin=instance.password + "\n")
    return instance


def _server_env(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY_FALLBACKS"}
    env.update(
        GATEHOUSE_ENV="development",
        DATABASE_URL=f"sqlite:///{directory / 'gatehouse.db'}",
        SECRET_KEY=secrets.token_urlsafe(36),  # 48 characters
    )
    return env


def _flask(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    command = [str(BIN / "flask"), "--app", "wsgi", *args]
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"flask {' '.join(args)} timed out") from exc
    if done.returncode != 0:
        raise BenchError(f"flask {' '.join(args)} failed:\n{done.stderr.strip()}")
