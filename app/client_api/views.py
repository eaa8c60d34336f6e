"""Internal endpoints for client apps: JSON in and out, HTTP Basic client authentication, rate-limited."""

from flask import Blueprint, abort, current_app, jsonify, request

from app.client_api import services
from app.clock import now
from app.extensions import csrf
from app.oauth import clients
from app.oauth.errors import OAuthError
from app.security import json_bodies
from app.security.origin import cross_site_allowed
from app.security.ratelimit import internal_client_key, retry_after_batched
from app.web.auth import json_api
from app.web.json_answers import json_answer

# Limited by _client_and_body below: counted in batches, so most calls make no round trip for it.
bp = Blueprint("client_api", __name__, url_prefix="/internal")

# DESIGN §6: a client may cache the answer for 60 s; nothing shared may.
VERIFY_CACHE_CONTROL = "private, max-age=60"
MAX_BODY_BYTES = 4096  # a grant token or a device id, with room to spare


class RateLimited(Exception):
    def __init__(self, seconds: int):
        self.seconds = seconds


def _client_and_body() -> tuple[clients.ClientIdentity, dict]:
    """The Basic credentials are parsed once: they key the rate limit (counted before the secret is checked, so
    guessing a secret is limited too), then authenticate the client. Then the body: a JSON object."""
    credentials = clients.basic_credentials(request.headers.get("Authorization"))
    limit = current_app.config["INTERNAL_RATE_LIMIT"]
    wait = retry_after_batched(limit, "internal", internal_client_key(credentials))
    if wait is not None:
        raise RateLimited(wait)
    return clients.authenticate_internal(credentials), _json_object()


def _json_object() -> dict:
    """The body, a small JSON object with a Content-Length, read straight from the WSGI input: on the hottest
    path, werkzeug's general stream wrapping costs more than the rest of the parsing."""
    if request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
        abort(415)
    length = request.content_length
    if length is None:
        abort(411)
    if length > MAX_BODY_BYTES:
        abort(413)
    try:
        return json_bodies.object_from(request.environ["wsgi.input"].read(length))
    except json_bodies.InvalidJSON as exc:
        raise OAuthError("invalid_request", str(exc)) from exc


def _answer(handler):
    try:
        return handler(*_client_and_body())
    except RateLimited as exc:
        body = {"error": "rate_limited", "error_description": "Too many requests; retry later."}
        return jsonify(body), 429, {"Retry-After": str(exc.seconds)}
    except services.BadRequest as exc:
        return jsonify(error="invalid_request", error_description=str(exc)), 400
    except OAuthError as exc:
        headers = {"WWW-Authenticate": 'Basic realm="gatehouse"'} if exc.status == 401 else {}
        return jsonify(exc.body()), exc.status, headers


def internal_endpoint(view):
    """Called by client apps' servers: client-authenticated JSON, never cookie-driven, rate-limited per client."""
    return csrf.exempt(cross_site_allowed(json_api(view)))


@bp.post("/grants/verify")
@internal_endpoint
def verify_grant():
    def handle(client, body):
        answer = services.public_answer(services.verify_grant(client, body.get("grant"), now()))
        return json_answer(answer, headers={"Cache-Control": VERIFY_CACHE_CONTROL})

    return _answer(handle)


@bp.post("/devices/check")
@internal_endpoint
def check_device():
    def handle(client, body):
        reauthorize = services.check_device(client, body.get("device_id"), now())
        return json_answer({"reauthorize": reauthorize}, headers={"Cache-Control": "no-store"})

    return _answer(handle)
