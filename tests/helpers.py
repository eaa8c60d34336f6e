"""Small test helpers: reading cookies and rows back, counting SQL, local servers."""

import threading
from contextlib import contextmanager
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sqlalchemy import event, select
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

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


class PathOnlyRequestLog(WSGIRequestHandler):
    """Request lines as gunicorn.conf.py has the real servers log them: the path without issued tokens, never the
    query string."""

    def log_request(self, code="-", size="-") -> None:
        path = loggable(urlsplit(self.path).path)
        self.log("info", '"%s %s %s" %s %s', self.command, path, self.request_version, code, size)


def local_server(app) -> BaseWSGIServer:
    """A threaded werkzeug server for app on a free loopback port (started by the caller)."""
    return make_server("127.0.0.1", 0, app, threaded=True, request_handler=PathOnlyRequestLog)


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
