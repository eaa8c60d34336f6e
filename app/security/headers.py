"""Security headers on every response (DESIGN §7)."""

from flask import Flask, Response, request
from werkzeug.datastructures import Headers

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HSTS = "max-age=31536000; includeSubDomains"


NO_STORE = ("Cache-Control", "no-store")


def security_headers(development: bool) -> tuple[tuple[str, str], ...]:
    """What every response carries unless its view set the header itself."""
    headers = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        # Not no-referrer: Flask-WTF's HTTPS CSRF check needs a same-origin Referer.
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    ]
    if not development:
        headers.append(("Strict-Transport-Security", HSTS))
    return tuple(headers)


def apply_security_headers(defaults: tuple[tuple[str, str], ...], response: Response) -> Response:
    add_security_headers(defaults, response.headers, static=request.endpoint == "static")
    return response


def add_security_headers(defaults: tuple[tuple[str, str], ...], headers: Headers, static: bool) -> None:
    """One pass over the response's headers, then the missing defaults appended (werkzeug's setdefault scans them
    again for each default and builds an exception for each miss: a tenth of a short request's time)."""
    present = {name.lower() for name, _ in headers}
    for name, value in defaults:
        if name.lower() not in present:
            headers.add(name, value)
    if not static and "cache-control" not in present:
        # Account pages and auth answers must never be stored by a shared or back/forward cache.
        headers.add(*NO_STORE)


def init_headers(app: Flask) -> None:
    defaults = security_headers(app.config["DEVELOPMENT"])
    app.after_request(lambda response: apply_security_headers(defaults, response))
