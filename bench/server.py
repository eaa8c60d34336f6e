"""Gunicorn for the benchmark: start on a free port, wait until it answers, always stop it."""

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import requests

from bench.errors import BenchError
from bench.instance import BIN, ROOT

HOST = "127.0.0.1"
WORKERS, THREADS = 2, 4
GATEHOUSE = "wsgi:app"  # what `make run` and a deployment serve
GATEHOUSE_READY_PATH = "/login"
START_TIMEOUT_SECONDS = 60.0  # a loaded 2-core machine imports the app slowly
STOP_TIMEOUT_SECONDS = 10.0
DESCRIPTION = (f"gunicorn {version('gunicorn')} -k gthread -w {WORKERS} --threads {THREADS} (and the repository's "
               f"gunicorn.conf.py), Flask {version('flask')}")  # fmt: skip


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    pid: int  # the gunicorn master's
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Spec:
    env: dict[str, str]
    log_path: Path
    app: str = GATEHOUSE
    ready_path: str = GATEHOUSE_READY_PATH  # answers 200 once the app is loaded


@contextlib.contextmanager
def gunicorns(specs: list[Spec]) -> Iterator[list[Server]]:
    """Start every server at once, wait until each answers; stop them all when the block ends, however it ends."""
    processes: list[subprocess.Popen] = []
    try:
        servers = []
        for spec in specs:
            port = _free_port({s.port for s in servers})
            command = [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", str(WORKERS)]
            command += ["--threads", str(THREADS), "--bind", f"{HOST}:{port}"]
            # Without this, gunicorn takes over ~/.gunicorn/gunicorn.ctl, which a `make run` server may own.
            command += ["--no-control-socket", spec.app]
            with spec.log_path.open("wb") as log:
                processes.append(
                    subprocess.Popen(command, cwd=ROOT, env=spec.env, stdout=log, stderr=subprocess.STDOUT)
                )
            servers.append(Server(HOST, port, processes[-1].pid, spec.log_path))
        for process, server, spec in zip(processes, servers, specs, strict=True):
            _wait_until_ready(process, server, spec.ready_path)
        yield servers
    finally:
        for process in processes:
            _stop(process)


def log_tail(log_path: Path, lines: int = 20) -> str:
    if not log_path.exists():
        return ""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port not in taken:  # not yet bound by a server started just before
            return port


def _wait_until_ready(process: subprocess.Popen, server: Server, ready_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with status {process.returncode}:\n{log_tail(server.log_path)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url + ready_path, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"gunicorn did not answer within {START_TIMEOUT_SECONDS:.0f} s:\n{log_tail(server.log_path)}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
