"""The client API answered in front of Flask (issue 13): a grant check is the request client apps make most, and
Flask's request machinery (request context, URL matching, session interface, the portal's before- and after-request
hooks, none of which a cookie-free JSON call needs) cost more than the check itself.

A well-formed call (POST, a JSON body of known length within the limit) to one of the two endpoints is answered
here, in an app context, by the same answer() the Flask views run, and carries the same security headers; anything
else goes to Flask, which answers it as before (405, 411, 413, 415, the error pages). The lane sits inside ProxyFix,
so the address it limits by is the one Flask would see. Should answering raise (a database that is down on a cold
check), the call is handed to Flask with its body, to be answered and logged as every other error: the rate limit
is then charged twice for it.
"""

import io

from flask import Flask

from app.client_api import views
from app.security.headers import add_security_headers, security_headers

HANDLERS = {
    "/internal/grants/verify": views.verify_grant_answer,
    "/internal/devices/check": views.check_device_answer,
}


class ClientApiLane:
    """WSGI middleware around Flask's wsgi_app."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app, self.wsgi_app = app, wsgi_app
        self.defaults = security_headers(app.config["DEVELOPMENT"])

    def __call__(self, environ, start_response):
        handler = HANDLERS.get(environ.get("PATH_INFO", ""))
        body = _json_body(environ) if handler is not None else None
        if handler is None or body is None:
            return self.wsgi_app(environ, start_response)
        try:
            with self.app.app_context():
                rv = views.answer(handler, environ.get("HTTP_AUTHORIZATION"), environ.get("REMOTE_ADDR"), lambda: body)
                response = self.app.make_response(rv)
        except Exception:  # Flask answers it (see above)
            environ["wsgi.input"] = io.BytesIO(body)
            return self.wsgi_app(environ, start_response)
        add_security_headers(self.defaults, response.headers, static=False)
        return response(environ, start_response)


def _json_body(environ) -> bytes | None:
    """The body of a call the lane takes, or None: a POST of application/json with a Content-Length (not chunked)
    of at most views.MAX_BODY_BYTES."""
    if environ.get("REQUEST_METHOD") != "POST" or "HTTP_TRANSFER_ENCODING" in environ:
        return None
    if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
        return None
    length = environ.get("CONTENT_LENGTH", "")
    if not (length.isascii() and length.isdigit()) or int(length) > views.MAX_BODY_BYTES:
        return None
    return environ["wsgi.input"].read(int(length))
