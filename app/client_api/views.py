"""Internal endpoints for client apps: JSON in and out, HTTP Basic client authentication, rate-limited."""

import functools

from flask import Blueprint, abort, current_app, jsonify, request

from app.client_api import services
from app.clock import now
from app.extensions import csrf, limiter
from app.oauth import clients
from app.oauth.errors import OAuthError
from app.security.origin import cross_site_allowed
from app.security.ratelimit import retry_after, token_client_key
from app.web.auth import json_api

bp = Blueprint("client_api", __name__, url_prefix="/internal")
limiter.exempt(bp)  # limited by _rate_limited below: one storage hit, none of Flask-Limiter's per-request work

# DESIGN §6: a client may cache the answer for 60 s; nothing shared may.
VERIFY_CACHE_CONTROL = "private, max-age=60"


def _client_and_body() -> tuple[clients.ClientIdentity, dict]:
    client = clients.authenticate_internal(request.headers.get("Authorization"))
    if not request.is_json:
        abort(415)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise OAuthError("invalid_request", "The body must be a JSON object.")
    return client, body


def _answer(handler):
    try:
        return handler(*_client_and_body())
    except services.BadRequest as exc:
        return jsonify(error="invalid_request", error_description=str(exc)), 400
    except OAuthError as exc:
        headers = {"WWW-Authenticate": 'Basic realm="gatehouse"'} if exc.status == 401 else {}
        return jsonify(exc.body()), exc.status, headers


def _rate_limited(view):
    """One storage hit per call: these are the hottest endpoints, so not Flask-Limiter's per-request machinery."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        wait = retry_after(current_app.config["INTERNAL_RATE_LIMIT"], "internal", token_client_key())
        if wait is not None:
            body = {"error": "rate_limited", "error_description": "Too many requests; retry later."}
            return jsonify(body), 429, {"Retry-After": str(wait)}
        return view(*args, **kwargs)

    return wrapped


def internal_endpoint(view):
    """Called by client apps' servers: client-authenticated JSON, never cookie-driven, rate-limited per client."""
    return csrf.exempt(cross_site_allowed(json_api(_rate_limited(view))))


@bp.post("/grants/verify")
@internal_endpoint
def verify_grant():
    def handle(client, body):
        answer = services.public_answer(services.verify_grant(client, body.get("grant"), now()))
        return jsonify(answer), 200, {"Cache-Control": VERIFY_CACHE_CONTROL}

    return _answer(handle)


@bp.post("/devices/check")
@internal_endpoint
def check_device():
    def handle(client, body):
        reauthorize = services.check_device(client, body.get("device_id"), now())
        return jsonify(reauthorize=reauthorize), 200, {"Cache-Control": "no-store"}

    return _answer(handle)
