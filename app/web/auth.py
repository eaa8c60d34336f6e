"""The auth boundary of every request: load the portal session, guard views, set the cookie."""

import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, abort, current_app, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from itsdangerous import URLSafeTimedSerializer
from werkzeug.http import parse_cookie
from werkzeug.wrappers import Response

from app.accounts.models import User
from app.accounts.services import has_second_factor
from app.clock import now as clock_now
from app.extensions import db
from app.sessions import methods
from app.sessions import services as sessions
from app.sessions.codec import CookieExpired, CookieInvalid, SessionHandle, SessionStore
from app.sessions.devices import RequestMeta, new_device_id, valid_device_id
from app.web.htmx import client_redirect, is_htmx
from app.web.sign_out_reasons import EXPIRED, login_reason

log = logging.getLogger("gatehouse.auth")

STORE_EXTENSION_KEY = "gatehouse.session_store"
DEVICE_COOKIE_MAX_AGE_SECONDS = 2 * 365 * 24 * 3600
JSON_PATH_PREFIXES = ("/api/", "/internal/")
# The client apps' API and the provider's back-channel endpoints authenticate the client (or a bearer token) on
# every call: they never read nor write a cookie. Known by path: Flask opens its session before matching the URL.
COOKIE_FREE_PREFIX = "/internal/"
COOKIE_FREE_PATHS = frozenset({"/oauth/token", "/oauth/revoke", "/oauth/introspect", "/oauth/userinfo"})


def cookie_free(path: str) -> bool:
    return path.startswith(COOKIE_FREE_PREFIX) or path in COOKIE_FREE_PATHS


class PortalSessionInterface(SecureCookieSessionInterface):
    """Flask's signed session (Flask-WTF keeps its CSRF secret there), never opened on the cookie-free API."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def open_session(self, app: Flask, request: Request):
        if cookie_free(request.path):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask's, built once per key set rather than on every request (twice, to open and to save)."""
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if keys not in self._serializers:
            self._serializers[keys] = super().get_signing_serializer(app)
        return self._serializers[keys]


def passive(view):
    """Mark a view as background polling: it must not count as activity nor re-issue the cookie."""
    view.gatehouse_passive = True
    return view


def _store() -> SessionStore:
    return current_app.extensions[STORE_EXTENSION_KEY]


def load_current_session() -> None:
    """Before every request: turn the cookie into g.current_session, or into nothing."""
    g.current_session = None
    g.session_ended = None  # the registry's reason when this request's cookie belonged to an ended session
    g.cookie_action = None
    if cookie_free(request.path):
        return
    raw = request.cookies.get(current_app.config["PORTAL_COOKIE_NAME"])
    if raw is None or request.endpoint == "static":
        return
    now = clock_now()
    try:
        handle = _store().decode(raw, now)
    except CookieExpired as expired:
        log.warning("expired session cookie presented")
        sessions.end_expired_cookie_session(expired.handle, now)
        _end_request_session(EXPIRED)
        return
    except CookieInvalid as invalid:
        log.warning("rejected session cookie: %s", invalid)
        g.cookie_action = "clear"
        return
    _check_registry(handle, now)


def passive_session(cookie_header: str | None, now: datetime) -> sessions.ActiveSession | None:
    """load_current_session for a passive poll answered in front of Flask (app/web/lane.py): the live session
    behind the portal cookie, from a valid cookie and the cache alone. None whenever load_current_session must run
    (no cookie, an expired or invalid one, a session not cached, ended or past its expiry): this ends no session and
    clears no cookie, that one does."""
    raw = parse_cookie(cookie_header).get(current_app.config["PORTAL_COOKIE_NAME"])
    if raw is None:
        return None
    try:
        handle = _store().decode(raw, now)
    except (CookieExpired, CookieInvalid):
        return None
    return sessions.cached_live_state(handle.public_id, handle.user_id, now)


def _check_registry(handle: SessionHandle, now: datetime) -> None:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    is_passive = getattr(view, "gatehouse_passive", False)
    try:
        state = sessions.check_session(handle.public_id, handle.user_id, now, touch=not is_passive)
    except sessions.SessionEnded as ended:
        _end_request_session(ended.reason)
        return
    # Only when the check read or wrote the database; a cache hit made no session at all, and asking one would.
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()
    g.current_session = state
    if not is_passive and _should_reissue(handle, state, now):
        g.cookie_action = "reissue"


def _should_reissue(handle: SessionHandle, state: sessions.ActiveSession, now: datetime) -> bool:
    """Sliding window: past half-life, and only if the new cookie lives longer (or moves to the current key)."""
    if handle.signed_with_fallback:
        return True
    half_life = handle.issued_at + (handle.expires_at - handle.issued_at) / 2
    return now >= half_life and state.cookie_expiry(now) > handle.expires_at


def _end_request_session(reason: str) -> None:
    db.session.commit()  # the expiry, if any, is recorded even though the request goes on anonymous
    g.session_ended = reason
    g.cookie_action = "clear"


def write_session_cookie(response: Response) -> Response:
    """After every request: re-issue (sliding window) or clear the portal cookie as decided."""
    action = g.get("cookie_action")
    if action == "reissue" and g.current_session is not None:
        _set_portal_cookie(response, g.current_session, clock_now())
    elif action == "clear":
        clear_portal_cookie(response)
    if not cookie_free(request.path):
        if "Vary" in response.headers:
            response.vary.add("Cookie")
        else:  # the common case, without parsing and rewriting a header set
            response.headers.add("Vary", "Cookie")
    return response


def establish_session(response: Response, state: sessions.ActiveSession, device_id: str) -> None:
    """After a successful sign-in: a new cookie, a new CSRF token, the device cookie kept."""
    renew_session(response, state)
    if request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"]) != device_id:
        response.set_cookie(
            current_app.config["DEVICE_COOKIE_NAME"],
            device_id,
            max_age=DEVICE_COOKIE_MAX_AGE_SECONDS,
            **_cookie_flags(),
        )


def renew_session(response: Response, state: sessions.ActiveSession) -> None:
    """A session id issued (sign-in) or renewed (re-authentication): its cookie, and a new CSRF token with it."""
    session.pop("csrf_token", None)  # rotate CSRF with the session (STYLE rule 4)
    g.current_session = state
    g.cookie_action = None
    _set_portal_cookie(response, state, state.authenticated_at)


def _set_portal_cookie(response: Response, state: sessions.ActiveSession, now: datetime) -> None:
    handle = SessionHandle(state.public_id, state.user_id, now, state.cookie_expiry(now))
    # The browser keeps the cookie until the absolute expiry so an ended session can say so.
    max_age = max(0, int((state.absolute_expires_at - now).total_seconds()))
    response.set_cookie(
        current_app.config["PORTAL_COOKIE_NAME"], _store().encode(handle), max_age=max_age, **_cookie_flags()
    )


def forget_session() -> None:
    """After sign-out: this response clears the cookie and the request is anonymous from here on."""
    g.current_session = None
    g.cookie_action = "clear"


def clear_portal_cookie(response: Response) -> None:
    response.delete_cookie(current_app.config["PORTAL_COOKIE_NAME"], **_cookie_flags())


def _cookie_flags() -> dict:
    # Host-only (no Domain), Path=/: what the __Host- prefix requires.
    return {
        "path": "/",
        "secure": current_app.config["SECURE_COOKIES"],
        "httponly": True,
        "samesite": "Lax",
    }


def client_ip() -> str:
    """The address audit events and services record: the peer, or the trusted proxy's X-Forwarded-For entry when
    ProxyFix is on; WSGI servers may leave REMOTE_ADDR unset (a Unix socket), hence "unknown"."""
    return request.remote_addr or "unknown"


def request_meta() -> RequestMeta:
    device_id = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"])
    return RequestMeta(
        ip=client_ip(),
        user_agent=request.headers.get("User-Agent", ""),
        device_id=device_id if valid_device_id(device_id) else new_device_id(),
    )


def current_user() -> User | None:
    if g.get("current_session") is None:
        return None
    if "current_user" not in g:
        g.current_user = db.session.get(User, g.current_session.user_id)
    return g.current_user


def signed_in_user() -> User:
    """The user behind a view guarded by login_required / owner_required: always there, or the guard is missing."""
    user = current_user()
    if user is None:
        raise RuntimeError("signed_in_user() outside login_required: no signed-in user on this request")
    return user


def json_api(view):
    """Mark a view as JSON-only: its errors, including "sign in first", are answered as JSON."""
    view.gatehouse_json_api = True
    return view


def wants_json() -> bool:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "gatehouse_json_api", False) or request.path.startswith(JSON_PATH_PREFIXES):
        return True
    if cookie_free(request.path):  # a method they do not take: still theirs, and no page (it would need a session)
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return request.is_json or best == "application/json"


def signed_out_response() -> ResponseReturnValue:
    """Where a request without a live session goes: /login, with the reason when it had one."""
    ended = g.get("session_ended")
    params: dict[str, Any] = {"reason": login_reason(ended)} if ended else {}
    if wants_json():
        body = {"error": "login_required", "error_description": "Sign in to continue."}
        return jsonify(body | params), 401
    if request.method == "GET" and not is_htmx():
        params["next"] = request.full_path.rstrip("?")
    location = url_for("accounts.login", **params)
    return client_redirect(location) if is_htmx() else redirect(location)


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("current_session") is None:
            return signed_out_response()
        return view(*args, **kwargs)

    return wrapped


def owner_required(view):
    """Owners only: members get 403 (JSON for the API), the same as any forbidden page."""

    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not signed_in_user().is_owner:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def is_fresh() -> bool:
    """Signed in (or confirmed again) on this device within the freshness window, and with the second step too when
    the account has one (DESIGN §9): a password alone is not fresh enough for an account that has more."""
    state = g.current_session
    if clock_now() - state.authenticated_at > timedelta(minutes=current_app.config["FRESH_AUTH_MINUTES"]):
        return False
    return methods.is_multi_factor(state.auth_methods) or not has_second_factor(signed_in_user())


def reauthenticate_url(next_url: str) -> str:
    return url_for("accounts.reauthenticate", next=next_url)


def fresh_auth_required(view):
    """Sensitive actions (ASVS 5.0 7.5.1): an old sign-in must enter the password again first."""

    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if is_fresh():
            return view(*args, **kwargs)
        target = reauthenticate_url(request.path)
        if wants_json():
            return jsonify(error="reauthentication_required", error_description="Enter your password again."), 403
        return client_redirect(target) if is_htmx() else redirect(target, 303)

    return wrapped


def init_auth(app: Flask) -> None:
    app.session_interface = PortalSessionInterface()
    app.before_request(load_current_session)
    app.after_request(write_session_cookie)
