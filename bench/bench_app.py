"""The WSGI app under benchmark: the real Gatehouse app plus a bare hello-world route."""

from flask import Response

from app import create_app

app = create_app()


# The baseline runs in the same app and the same gunicorn configuration, so it still passes
# through the app's before/after request hooks (session loader, CSRF, limiter, security headers).
# That is fair: every real request pays for them too. Without a cookie the session check is
# skipped, so the gap to /session/status is the session check plus the view.
@app.get("/__bench/hello")
def hello() -> Response:
    return Response("hello", mimetype="text/plain")
