"""Small test helpers: reading cookies and rows back, counting SQL, local servers."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sqlalchemy import event, select
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from app.extensions import db
from app.security.log_paths import loggable
from app.sessions.models import UserSession

PORTAL_COOKIE = "gh_session"


def set_cookies(response) -> dict[str, SimpleCookie]:
    """Parsed Set-Cookie headers by cookie name."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            cookies[name] = morsel
    return cookies


def portal_cookie(client, name=PORTAL_COOKIE) -> str | None:
    cookie = client.get_cookie(name)
    return cookie.value if cookie else None


def sessions_of(app, user_id: int) -> list[UserSession]:
    with app.app_context():
        rows = db.session.scalars(select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.id))
        result = list(rows)
        db.session.expunge_all()
        return result


@contextmanager
def count_statements(app, prefix: str):
    """Count SQL statements starting with prefix (case-insensitive) run by the app's engine."""
    counter = {"n": 0}

    def before(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(prefix.upper()):
            counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)


class InFlight:
    """The requests a test server is answering, so that stopping it can wait for them."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *_exc) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class PathOnlyRequestLog(WSGIRequestHandler):
    """Request lines as gunicorn.conf.py has the real servers log them: the path without issued tokens, never the
    query string. Each request is counted in the server's InFlight while it runs."""

    server: "LiveWSGIServer"

    def run_wsgi(self) -> None:
        with self.server.in_flight:
            super().run_wsgi()

    def log_request(self, code="-", size="-") -> None:
        path = loggable(urlsplit(self.path).path)
        self.log("info", '"%s %s %s" %s %s', self.command, path, self.request_version, code, size)


class LiveWSGIServer(ThreadedWSGIServer):
    """werkzeug's threaded server with its requests in flight counted."""

    def __init__(self, app) -> None:
        super().__init__("127.0.0.1", 0, app, handler=PathOnlyRequestLog)
        self.in_flight = InFlight()


@contextmanager
def serving(app) -> Iterator[LiveWSGIServer]:
    """app served by a threaded werkzeug server on a free loopback port, in a thread, until the block ends. Stopping
    waits (up to 5 s) for the requests in flight, so a browser's late request (a favicon, say) is not cut off by the
    app's teardown with a file or a transaction still open."""
    server = LiveWSGIServer(app)
    thread = threading.Thread(target=server.serve_forever, name=f"live-{server.server_port}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.in_flight.wait_idle(timeout=5)
        server.server_close()
        thread.join(timeout=5)


class QuietHandler(BaseHTTPRequestHandler):
    """http.server's handler without its request lines on stderr."""

    def log_message(self, *args) -> None:
        pass


class LoopbackHTTPServer:
    """A test's own HTTP endpoint (a client app's back channel, a range API): a threaded http.server on a free
    loopback port answering through handler; close() stops it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = "/"):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def assert_no_active_answer_after(revoke: Callable[[], None], checks: list[Callable[[], bool]], seconds: float) -> None:
    """Under load, each check (True: "active") asked again and again in a thread of its own; `seconds` in, revoke()
    runs. Some answer started before it returned said active, and none started after it returned did. Real threads
    and servers under load: the waits are for them, not standing in for the app clock."""
    answers: list[tuple[float, bool]] = []  # (started, active)
    stop = threading.Event()

    def hammer(check) -> None:
        while not stop.is_set():
            started = time.monotonic()
            answers.append((started, check()))

    threads = [threading.Thread(target=hammer, args=(check,)) for check in checks]
    for thread in threads:
        thread.start()
    try:
        time.sleep(seconds)
        revoke()
        returned = time.monotonic()
        time.sleep(seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    before = [active for started, active in answers if started < returned]
    after = [active for started, active in answers if started > returned]
    assert any(before) and after, (len(before), len(after))
    assert not any(after), f"{sum(after)} of {len(after)} answers started after the revocation said active"
