"""Internal endpoints for client apps: JSON in and out, HTTP Basic client authentication, rate-limited.

A well-formed call is answered in front of Flask by app/web/lane.py; both run answer() below."""

from collections.abc import Callable

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.wrappers import Response

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

# Limited by answer() below: counted in batches, so most calls make no round trip for it.
bp = Blueprint("client_api", __name__, url_prefix="/internal")

# DESIGN §6: a client may cache the answer for 60 s; nothing shared may.
VERIFY_CACHE_CONTROL = "private, max-age=60"
MAX_BODY_BYTES = 4096  # a grant token or a device id, with room to spare

Handler = Callable[[clients.ClientIdentity, dict], Response]


def verify_grant_answer(client: clients.ClientIdentity, body: dict) -> Response:
    answer = services.public_answer(services.verify_grant(client, body.get("grant"), now()))
    return json_answer(answer, headers={"Cache-Control": VERIFY_CACHE_CONTROL})


def check_device_answer(client: clients.ClientIdentity, body: dict) -> Response:
    reauthorize = services.check_device(client, body.get("device_id"), now())
    return json_answer({"reauthorize": reauthorize}, headers={"Cache-Control": "no-store"})


def answer(handler: Handler, authorization: str | None, address: str | None, read_body: Callable[[], bytes]):
    """One call, in an app context: the Basic credentials are parsed once; they key the rate limit (charged before
    the secret is checked, so guessing a secret is limited too), then authenticate the client; then the body, read
    by read_body, must be a JSON object for handler."""
    try:
        credentials = clients.basic_credentials(authorization)
        limit = current_app.config["INTERNAL_RATE_LIMIT"]
        wait = retry_after_batched(limit, "internal", internal_client_key(credentials, address))
        if wait is not None:
            body = {"error": "rate_limited", "error_description": "Too many requests; retry later."}
            return jsonify(body), 429, {"Retry-After": str(wait)}
        client = clients.authenticate_internal(credentials)
        try:
            fields = json_bodies.object_from(read_body())
        except json_bodies.InvalidJSON as exc:
            raise OAuthError("invalid_request", str(exc)) from exc
        return handler(client, fields)
    except services.BadRequest as exc:
        return jsonify(error="invalid_request", error_description=str(exc)), 400
    except OAuthError as exc:
        headers = {"WWW-Authenticate": 'Basic realm="gatehouse"'} if exc.status == 401 else {}
        return jsonify(exc.body()), exc.status, headers


def _request_body() -> bytes:
    """A small JSON body with a Content-Length, read straight from the WSGI input: on the hottest path, werkzeug's
    general stream wrapping costs more than the rest of the parsing."""
    if request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
        abort(415)
    length = request.content_length
    if length is None:
        abort(411)
    if length > MAX_BODY_BYTES:
        abort(413)
    return request.environ["wsgi.input"].read(length)


def internal_endpoint(handler: Handler):
    """A view called by client apps' servers: client-authenticated JSON, never cookie-driven, rate-limited per
    client."""

    def view():
        return answer(handler, request.headers.get("Authorization"), request.remote_addr, _request_body)

    view.__name__ = handler.__name__.removesuffix("_answer")
    return csrf.exempt(cross_site_allowed(json_api(view)))


bp.post("/grants/verify")(internal_endpoint(verify_grant_answer))
bp.post("/devices/check")(internal_endpoint(check_device_answer))
