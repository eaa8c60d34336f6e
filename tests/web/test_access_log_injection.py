"""CWE-117 for the real server: gunicorn, configured by gunicorn.conf.py, writes one access-log line per request,
whatever control characters the (decoded) path holds."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY, free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30
FORGED = "FORGED 127.0.0.1 - GET /admin 200"


def raw_get(port: int, target: str) -> bytes:
    """A request line sent as written (an HTTP client library would refuse or re-encode it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.fixture(scope="module")
def gunicorn(database_urls, tmp_path_factory):
    """`gunicorn wsgi:app` from the project folder (so it reads gunicorn.conf.py), its access log in a file."""
    folder = tmp_path_factory.mktemp("gunicorn")
    port, log, errors = free_port(), folder / "access.log", folder / "error.log"
    env = {**os.environ, "DATABASE_URL": database_urls["sqlite"], "SECRET_KEY": SECRET_KEY,
           "GATEHOUSE_ENV": "development", "ISSUER": f"http://127.0.0.1:{port}"}  # fmt: skip
    env.pop("REDIS_URL", None)
    argv = [str(Path(sys.executable).parent / "gunicorn"), "--no-control-socket", "--workers", "1",
            "--bind", f"127.0.0.1:{port}", "--access-logfile", str(log), "wsgi:app"]  # fmt: skip
    with errors.open("wb") as error_log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=error_log,
                                   start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while b" 200 " not in _try_get(port):
            assert process.poll() is None and time.monotonic() < deadline, errors.read_text()[-2000:]
            time.sleep(0.1)  # waiting for a process to start, not standing in for time
        yield port, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def _try_get(port: int) -> bytes:
    try:
        return raw_get(port, "/login")
    except OSError:
        return b""


def lines_after(log: Path, marker: str) -> list[str]:
    """The access log's lines once the line for `marker` is written (gunicorn logs after answering)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        if marker in text:
            return text.splitlines()
        time.sleep(0.05)  # waiting for another process's write, not standing in for time
    raise AssertionError(f"no access-log line for {marker!r}:\n{text[-2000:]}")


@pytest.mark.parametrize("encoded", ["%0d%0a", "%0a", "%0d", "%1b[2J", "%00", "%e2%80%a8", "%0b%0c%85"], ids=repr)
def test_one_request_is_one_access_log_line(gunicorn, encoded):
    port, log = gunicorn
    marker = f"inject-{encoded.replace('%', '')}-"
    raw_get(port, f"/{marker}{encoded}{FORGED.replace(' ', '%20')}{encoded}x")
    lines = lines_after(log, marker)
    assert all(line.startswith("127.0.0.1 [") for line in lines), lines  # every line is one gunicorn wrote
    ours = [line for line in lines if marker in line]
    assert len(ours) == 1, ours
    assert all(" " <= c <= "~" for c in ours[0]), ours[0]  # no control or other non-printable character
    assert "\\x" in ours[0]  # escaped, not dropped: the operator still sees what was sent


@pytest.mark.parametrize("path", ["/reset-password/{}", "/reset-password/{}/", "/x/{}/y"], ids=["link", "slash", "mid"])
def test_a_mailed_links_token_never_reaches_the_access_log(gunicorn, path):
    """Catalogue #32: a single-use link carries its token in the path; the access log keeps the prefix only."""
    port, log = gunicorn
    token = "ghp_" + secrets.token_urlsafe(32)
    raw_get(port, path.format(token))
    marker = path.format("ghp_[redacted]")
    lines = lines_after(log, marker)
    assert not [line for line in lines if token[4:] in line]
