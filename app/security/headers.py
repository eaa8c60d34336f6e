"""Security headers on every response (DESIGN §7)."""

from flask import Flask, Response, request

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


def apply_security_headers(app: Flask, response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # Not no-referrer: Flask-WTF's HTTPS CSRF check needs a same-origin Referer.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
    if not app.config["DEVELOPMENT"]:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint != "static":
        # Account pages and auth answers must never be stored by a shared or back/forward cache.
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_headers(app: Flask) -> None:
    app.after_request(lambda response: apply_security_headers(app, response))
