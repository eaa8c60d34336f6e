"""Gunicorn for the benchmark: start on a free port, wait until it answers, always stop it."""

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.errors import BenchError
from bench.instance import BIN, ROOT

HOST = "127.0.0.1"
WORKERS, THREADS = 2, 4
READY_PATH = "/__bench/hello"
APP = "bench.bench_app:app"  # bench.floor_app:app answers READY_PATH too (it answers every path)
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
DESCRIPTION = f"gunicorn gthread, {WORKERS} workers x {THREADS} threads"


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log_path: Path, app: str = APP) -> Iterator[Server]:
    """Serve app (the Gatehouse bench app by default) until the block ends, however it ends."""
    server = Server(HOST, _free_port())
    command = [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", str(WORKERS)]
    command += ["--threads", str(THREADS), "--bind", f"{server.host}:{server.port}"]
    # Without this, gunicorn takes over ~/.gunicorn/gunicorn.ctl, which a `make run` server may own.
    command += ["--no-control-socket", app]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, server, log_path)
        yield server
    finally:
        _stop(process)


def log_tail(log_path: Path, lines: int = 20) -> str:
    if not log_path.exists():
        return ""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait_until_ready(process: subprocess.Popen, server: Server, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with status {process.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url + READY_PATH, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"gunicorn did not answer within {START_TIMEOUT_SECONDS:.0f} s:\n{log_tail(log_path)}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
