"""The hottest requests answered in front of Flask (issue 13): client apps' grant and device checks, and the
signed-in status poll of the expiry banner. For them, Flask's request machinery (request context, URL matching,
the session interface, the portal's before- and after-request hooks) cost more than the answer itself.

Each route below is answered here, in an app context, by the same functions the Flask views run, with the same
headers, when the request is the plain case: a client API call that is a POST of a JSON body of known length within
the limit; a status poll whose portal cookie is valid and whose session is live in the cache. Anything else goes to
Flask, which answers it as before (405, 411, 413, 415, a cookie to clear, a session to end, the error pages), and so
does a request whose answer raises here (a database down on a cold grant check): the client API's rate limit is then
charged twice for it. The lane sits inside ProxyFix, so it sees the address Flask would.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from werkzeug.wrappers import Response

from app.client_api import views as client_api
from app.security.headers import add_security_headers, security_headers
from app.sessions import views as sessions

Answer = Callable[[dict], Response | None]  # the WSGI environ → the answer, or None for Flask to answer


def _client_api(handler: client_api.Handler) -> Answer:
    def answer(environ: dict) -> Response | None:
        body = _json_body(environ)
        if body is None:
            return None
        environ["wsgi.input"] = io.BytesIO(body)  # read again by Flask, should it answer after all
        authorization, address = environ.get("HTTP_AUTHORIZATION"), environ.get("REMOTE_ADDR")
        return client_api.answer(handler, authorization, address, lambda: body)

    return answer


def _status(environ: dict) -> Response | None:
    return sessions.status_answer(environ.get("HTTP_COOKIE"))


@dataclass(frozen=True)
class Route:
    answer: Answer
    # Cookie-driven: after the security headers, Vary: Cookie, as app.web.auth.write_session_cookie adds it to every
    # answer outside the cookie-free API.
    vary_cookie: bool = False


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/internal/grants/verify"): Route(_client_api(client_api.verify_grant_answer)),
    ("POST", "/internal/devices/check"): Route(_client_api(client_api.check_device_answer)),
    ("GET", "/session/status"): Route(_status, vary_cookie=True),
}


class Lane:
    """WSGI middleware around Flask's wsgi_app."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app, self.wsgi_app = app, wsgi_app
        self.defaults = security_headers(app.config["DEVELOPMENT"])

    def __call__(self, environ, start_response):
        route = ROUTES.get((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")))
        if route is None:
            return self.wsgi_app(environ, start_response)
        try:
            with self.app.app_context():
                rv = route.answer(environ)
                response = None if rv is None else self.app.make_response(rv)
        except Exception:  # Flask answers it (see above)
            response = None
        if response is None:
            return self.wsgi_app(environ, start_response)
        add_security_headers(self.defaults, response.headers, static=False)
        if route.vary_cookie:
            response.headers.add("Vary", "Cookie")
        # A JSON answer built whole: its headers are final (werkzeug set its Content-Length), so it is sent as is,
        # without the general WSGI answer's rewriting (Location, conditional and HEAD answers, iterables).
        start_response(response.status, response.headers.to_wsgi_list())
        return [response.get_data()]


def _json_body(environ: dict) -> bytes | None:
    """The body of a client API call the lane takes, or None: application/json with a Content-Length (not chunked)
    of at most client_api.MAX_BODY_BYTES."""
    if "HTTP_TRANSFER_ENCODING" in environ:
        return None
    if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
        return None
    length = environ.get("CONTENT_LENGTH", "")
    if not (length.isascii() and length.isdigit()) or int(length) > client_api.MAX_BODY_BYTES:
        return None
    return environ["wsgi.input"].read(int(length))
