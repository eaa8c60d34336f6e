"""Error answers: a page in the site's style for browsers, JSON for JSON clients, never a trace."""

import logging

from flask import Flask, jsonify, render_template
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.extensions import db
from app.web.auth import wants_json

log = logging.getLogger("gatehouse.errors")

RETRY_AFTER_UNAVAILABLE_SECONDS = 5
DATABASE_FAULTS = (OperationalError, InterfaceError, PoolTimeout)
SERVER_FAULT = 500
# Title and sentence per status; the OAuth-style error code JSON clients receive.
MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again.", "invalid_request"),
    401: ("Sign-in required", "Sign in to continue.", "login_required"),
    403: ("Not allowed", "You do not have access to this page.", "access_denied"),
    404: ("Page not found", "There is nothing here. Check the address, or go back home.", "not_found"),
    405: ("Method not allowed", "This address does not accept that kind of request.", "method_not_allowed"),
    411: ("Length required", "Send the request body with a Content-Length header.", "length_required"),
    413: ("Request too large", "The request was larger than this service accepts.", "request_too_large"),
    415: ("Unsupported type", "Send the request body as JSON.", "unsupported_media_type"),
    429: ("Too many attempts", "Too many attempts. Wait a moment before trying again.", "rate_limited"),
    500: ("Something went wrong", "An unexpected error occurred. It has been logged.", "server_error"),
    503: (
        "Temporarily unavailable",
        "The service cannot reach its database right now. Nothing was lost; try again in a few seconds.",
        "temporarily_unavailable",
    ),
}


def error_response(status: int, description: str | None = None, headers: dict | None = None):
    if wants_json():
        _, sentence, code = MESSAGES.get(status, MESSAGES[500])
        return jsonify(error=code, error_description=description or sentence), status, headers or {}
    try:
        # A server fault may be the database itself: its page never asks the database again (the signed-in
        # chrome needs the user's role), or the error page would fail in turn and the server answer a bare 500.
        page = _page(status, description, portal_chrome=status < SERVER_FAULT)
    except DATABASE_FAULTS as exc:
        # A 4xx page for a session served from the cache loads the user for its chrome: with the database down
        # that is the 503 page, without chrome (never a second fault inside the error handler).
        _log_unavailable(exc)
        return _page(503, None, portal_chrome=False), 503, _unavailable_headers()
    return page, status, headers or {}


def _page(status: int, description: str | None, *, portal_chrome: bool) -> str:
    title, sentence, _ = MESSAGES.get(status, MESSAGES[500])
    return render_template(
        "errors/error.html", status=status, title=title, message=description or sentence, portal_chrome=portal_chrome
    )


def _http_error(exc: HTTPException):
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    if exc.code == 429:
        headers["Retry-After"] = str(_retry_after(exc))
    return error_response(exc.code or 500, headers=headers)


def _retry_after(exc: HTTPException) -> int:
    return int(getattr(exc, "retry_after", None) or 60)  # werkzeug's TooManyRequests(retry_after=seconds)


def _csrf_error(exc: CSRFError):
    return error_response(
        400, f"The form expired or did not come from this site ({exc.description}). Reload and try again."
    )


def _database_unavailable(exc: DBAPIError | PoolTimeout):
    # DESIGN §8: fail closed with a clear 503; nothing committed is lost, the pool reconnects by itself.
    _log_unavailable(exc)
    return error_response(503, headers=_unavailable_headers())


def _log_unavailable(exc: Exception) -> None:
    log.error("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
    db.session.rollback()


def _unavailable_headers() -> dict:
    return {"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)}


def _unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("unhandled error", exc_info=exc)
    db.session.rollback()
    return error_response(500)


def init_errors(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    for fault in DATABASE_FAULTS:
        app.register_error_handler(fault, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
