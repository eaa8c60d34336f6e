"""Gatehouse relying-party kit: sign a Flask app's users in with Gatehouse and keep it in step (DESIGN §6).

Usage::

    import os
    from flask import Flask
    from app.relying_party import ACR_MFA, Gatehouse, current_user, login_required

    app = Flask(__name__)
    app.secret_key = os.environ["SECRET_KEY"]  # the app's own cookie session keeps the sign-in
    Gatehouse(app, issuer="https://gatehouse.example", client_id=os.environ["CLIENT_ID"],
              client_secret=os.environ["CLIENT_SECRET"], name="shop", base_url="https://shop.example")

    @app.get("/orders")
    @login_required
    def orders():
        return f"Hello, {current_user().first_name}"  # sign out: a form that POSTs to /auth/logout

    @app.get("/billing")
    @login_required(acr=ACR_MFA)  # step-up: signed in with the second step (current_user().acr, .amr)
    def billing(): ...

Register the client with redirect URI {base_url}/auth/callback, back-channel logout URI
{base_url}/auth/backchannel-logout and post-logout redirect URI {base_url}/. With several worker processes, pass
store=RedisStore(url) so that a back-channel logout received by one worker is seen by all.

The OAuth 2.0 / OpenID Connect client is Authlib's (portal.py: discovery, PKCE, the code exchange; tokens.py: the ID
token's claims). What Authlib's client has no notion of is the kit's own: the device cookie, the grant check and its
cache, the device check and silent re-authorization, the back-channel logout receiver and its logout token, and
step-up: asking the portal for the second step when a view needs it (DESIGN §9).
"""

import contextlib
import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, abort, current_app, g, redirect, render_template, request, session, url_for

from app.relying_party.portal import Portal, PortalRefused, PortalUnavailable
from app.relying_party.stores import MemoryStore, RedisStore, Store, StoreError
from app.security import redirects

__all__ = [
    "ACR_MFA",
    "ACR_PASSWORD",
    "Gatehouse",
    "MemoryStore",
    "RedisStore",
    "Store",
    "User",
    "current_user",
    "login_required",
]

log = logging.getLogger(__name__)

EXTENSION_KEY = "gatehouse_rp"
USER_KEY, PENDING_KEY, SILENT_KEY = "gatehouse_user", "gatehouse_pending", "gatehouse_silent"
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")  # what /oauth/authorize accepts as device_id
DEVICE_COOKIE_SECONDS = 400 * 24 * 3600  # RFC 6265bis: browsers cap a cookie's lifetime at 400 days
UNAVAILABLE_BACKOFF_SECONDS = 5  # after a failed call, answer "unavailable" at once for this long (no 3 s waits)
SIGNED_OUT_NOTICE = "You were signed out of Gatehouse."
UNAVAILABLE_NOTICE = "Gatehouse cannot be reached right now, so you appear signed out. Try again in a moment."
# The portal's acr values (its discovery's acr_values_supported), weakest first: a password, then two steps.
ACR_PASSWORD, ACR_MFA = "urn:gatehouse:acr:pwd", "urn:gatehouse:acr:mfa"
ACR_VALUES = (ACR_PASSWORD, ACR_MFA)
TWO_STEP_PATH = "/account/two-step"  # where the portal's users set up a second step


def _utc_now() -> datetime:
    return datetime.now(UTC)


def acr_meets(acr: str | None, needed: str) -> bool:
    """A sign-in of this acr is as strong as needed or stronger (mfa meets pwd); an unknown acr meets none."""
    return acr in ACR_VALUES and ACR_VALUES.index(acr) >= ACR_VALUES.index(needed)


@dataclass(frozen=True)
class User:
    """The signed-in user as this app knows them: the portal's subject, their name, the grant's public id, and how they
    signed in as the ID token said: its acr (ACR_PASSWORD or ACR_MFA) and amr (RFC 8176: ("pwd", "otp"), ...)."""

    sub: str
    name: str | None
    sid: str
    acr: str | None = None
    amr: tuple[str, ...] = ()

    @property
    def first_name(self) -> str:
        words = (self.name or "").split()
        return words[0] if words else "there"


def current_user() -> User | None:
    """The user of this request, once the grant is confirmed active; None when signed out."""
    return g.get("gatehouse_user")


def login_required(view: Callable | None = None, *, acr: str | None = None):
    """Send a signed-out visitor to sign in (and back here); 503 when Gatehouse cannot be reached.

    With acr=ACR_MFA (step-up, in the spirit of RFC 9470): a user signed in with less is sent to the portal again with
    acr_values, to answer its second step, and comes back here. When the portal still answers with less (the user has
    no second step to give), a page says to set one up rather than asking again."""
    if acr is not None and acr not in ACR_VALUES:
        raise ValueError(f"acr must be one of {ACR_VALUES}")
    if view is None:
        return functools.partial(login_required, acr=acr)

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            if g.get("gatehouse_unavailable"):
                abort(503)
        elif acr is None or acr_meets(user.acr, acr):
            return view(*args, **kwargs)
        elif session[USER_KEY].get("step_up_refused") == acr:
            return _step_up_refused(acr)
        return redirect(url_for("gatehouse.login", next=local_path(), acr=acr))  # acr=None is left out

    wrapped.gatehouse_acr = acr  # type: ignore[attr-defined]  # read by the silent re-authorization
    return wrapped


def _step_up_refused(acr: str):
    """The portal answered the step-up with a weaker sign-in: say what to do, with a link to try again (403)."""
    kit: Gatehouse = current_app.extensions[EXTENSION_KEY]
    page = render_template("gatehouse/two_step_needed.html", gatehouse_layout=kit.layout,
                           two_step_url=kit.issuer + TWO_STEP_PATH,
                           retry_url=url_for("gatehouse.login", acr=acr, next=local_path()))  # fmt: skip
    return page, 403, {"Cache-Control": "no-store"}


def local_path() -> str:
    """This request's path and query, to come back to after signing in."""
    query = request.query_string.decode("latin-1")
    return request.script_root + request.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """Only a path on this site: the portal's one safe-redirect rule, with this app's root as the fallback."""
    return redirects.safe_next(value, request.script_root + "/")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Gatehouse:
    """The Flask extension: device cookie, sign-in routes, grant and device checks, back-channel logout."""

    def __init__(self, app: Flask | None = None, *, issuer: str, client_id: str, client_secret: str,
                 name: str | None = None, base_url: str | None = None, scope: str = "openid profile email",
                 clock: Callable[[], datetime] = _utc_now, store: Store | None = None, cache: Store | None = None,
                 timeout: float = 3.0, verify_ttl: int = 60, device_check_ttl: int = 10,
                 silent_retry_seconds: int = 300, revoked_sid_seconds: int = 3600,
                 layout: str = "gatehouse/layout.html"):  # fmt: skip
        self.issuer, self.client_id = issuer.rstrip("/"), client_id
        self.portal = Portal(self.issuer, client_id, client_secret, timeout, scope)
        self.name, self.base_url, self.scope, self.clock = name, (base_url or "").rstrip("/") or None, scope, clock
        self.store = store or MemoryStore()  # revoked sids and seen jtis: with several workers, a RedisStore
        self.cache = cache or MemoryStore()  # grant-verify and device-check answers
        self.verify_ttl, self.device_check_ttl = verify_ttl, device_check_ttl
        self.silent_retry = timedelta(seconds=silent_retry_seconds)
        self.revoked_sid_ttl = timedelta(seconds=revoked_sid_seconds)
        self.layout = layout  # the template the kit's own page extends (blocks title and content)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        from app.relying_party.views import bp

        if not app.secret_key:
            raise RuntimeError("Gatehouse needs the app's secret_key (its cookie session keeps the sign-in state)")
        if app.config.get("SESSION_COOKIE_SAMESITE") == "Strict":
            raise RuntimeError("SESSION_COOKIE_SAMESITE=Strict drops the session on the way back from Gatehouse")
        self.name = self.name or app.import_name.rpartition(".")[2]
        app.extensions[EXTENSION_KEY] = self
        app.register_blueprint(bp)
        if "csrf" in app.extensions:  # Flask-WTF: the portal's back-channel POST carries no CSRF token
            app.extensions["csrf"].exempt(bp)
        app.before_request(self._before_request)
        app.after_request(self._after_request)
        app.context_processor(lambda: {"gatehouse_user": current_user(), "gatehouse_notice": g.get("gatehouse_notice")})

    @property
    def device_cookie(self) -> str:
        return f"{self.name}_did"

    def url(self, endpoint: str, **values) -> str:
        """An absolute URL of this app: from base_url when set (behind a proxy), else from the request."""
        if self.base_url:
            return self.base_url + url_for(endpoint, **values)
        return url_for(endpoint, _external=True, **values)

    def post_logout_redirect_uri(self) -> str:
        return (self.base_url + "/") if self.base_url else request.url_root

    # -- Every request -------------------------------------------------------------------------------------------

    def _before_request(self):
        if request.endpoint == "gatehouse.backchannel_logout":
            return None  # server to server: no cookies, no session
        presented = request.cookies.get(self.device_cookie, "")
        g.gatehouse_new_device = not DEVICE_ID_PATTERN.fullmatch(presented)
        g.gatehouse_device_id = secrets.token_urlsafe(24) if g.gatehouse_new_device else presented
        if request.endpoint is None or request.endpoint == "static" or request.endpoint.startswith("gatehouse."):
            return None
        g.gatehouse_user = self._session_user()
        if g.gatehouse_user is None and not g.gatehouse_new_device and self._is_navigation():
            return self._maybe_reauthorize()
        return None

    def _after_request(self, response):
        if g.get("gatehouse_new_device") or g.get("gatehouse_renew_device"):  # renewed at each sign-in
            secure = (self.base_url or request.url).startswith("https://")
            response.set_cookie(self.device_cookie, g.gatehouse_device_id, max_age=DEVICE_COOKIE_SECONDS,
                                httponly=True, samesite="Lax", secure=secure)  # fmt: skip
        return response

    @staticmethod
    def _is_navigation() -> bool:
        """Only a page load may be redirected to the portal (Fetch Metadata: not images, XHR or prefetches)."""
        mode = request.headers.get("Sec-Fetch-Mode")
        return request.method in ("GET", "HEAD") and mode in (None, "navigate")

    def _session_user(self) -> User | None:
        stored = session.get(USER_KEY)
        if not stored:
            return None
        if not isinstance(stored, dict) or not all(isinstance(stored.get(k), str) for k in ("sub", "sid", "grant")):
            session.pop(USER_KEY, None)  # written by another version of the kit: sign in again
            return None
        now = self.clock()
        if self._sid_logged_out(stored["sid"], now):  # Back-Channel Logout 1.0 §2.7: that session is over
            self._end_local_session()
            return None
        try:
            active = self.grant_active(stored["grant"], now)
        except (PortalUnavailable, StoreError) as exc:
            log.warning("grant verify failed, treating the user as signed out for now: %s", exc)
            g.gatehouse_unavailable = True
            g.gatehouse_notice = ("warning", UNAVAILABLE_NOTICE)
            return None  # fail closed once the cached answer has expired; the local session is kept for later
        if not active:
            self._end_local_session()
            return None
        return User(stored["sub"], stored.get("name"), stored["sid"], stored.get("acr"), tuple(stored.get("amr", ())))

    def _sid_logged_out(self, sid: str, now: datetime) -> bool:
        try:
            return bool(self.store.get(f"sid:{sid}", now))
        except StoreError as exc:  # the grant check still catches the logout within its cache time
            log.warning("revoked-sid store unavailable: %s", exc)
            return False

    def _end_local_session(self) -> None:
        session.pop(USER_KEY, None)
        g.gatehouse_notice = ("info", SIGNED_OUT_NOTICE)

    def _portal_call(self, call: Callable, *args):
        """Call the portal unless a recent failure says not to; a failure or a 4xx is PortalUnavailable."""
        now = self.clock()
        if self.cache.get("portal:down", now):
            raise PortalUnavailable("the portal failed recently")
        try:
            return call(*args)
        except (PortalUnavailable, PortalRefused) as exc:
            retry = getattr(exc, "retry_after", None) or UNAVAILABLE_BACKOFF_SECONDS
            self.cache.set("portal:down", True, now + timedelta(seconds=min(retry, self.verify_ttl)), now)
            raise PortalUnavailable(str(exc)) from exc

    def grant_active(self, grant_token: str, now: datetime) -> bool:
        """DESIGN §6 grant check, reused for its max-age (at most verify_ttl) and never past the grant's expiry."""
        key = f"verify:{digest(grant_token)}"
        cached = self.cache.get(key, now)
        if cached is not None:
            return cached
        body, max_age = self._portal_call(self.portal.verify_grant, grant_token)
        active = body.get("active") is True and body.get("client_id", self.client_id) == self.client_id
        until = now + timedelta(seconds=min(max_age, self.verify_ttl))
        if active and isinstance(body.get("expires_at"), str):
            with contextlib.suppress(ValueError):  # an unreadable expiry: max-age alone
                expires = datetime.fromisoformat(body["expires_at"])
                until = min(until, expires if expires.tzinfo else expires.replace(tzinfo=UTC))
        if until > now:
            self.cache.set(key, active, until, now)
        return active

    def _device_says_reauthorize(self, device_id: str, now: datetime) -> bool:
        """DESIGN §6 device check, cached device_check_ttl seconds per device id."""
        key = f"device:{digest(device_id)}"
        cached = self.cache.get(key, now)
        if cached is None:
            cached = self._portal_call(self.portal.check_device, device_id)
            self.cache.set(key, cached, now + timedelta(seconds=self.device_check_ttl), now)
        return cached

    def forget_device_answer(self, device_id: str) -> None:
        self.cache.delete(f"device:{digest(device_id)}")

    def _maybe_reauthorize(self):
        """Signed out here but signed in to the portal again on this device: sign in silently (prompt=none)."""
        now = self.clock()
        try:
            reauthorize = self._device_says_reauthorize(g.gatehouse_device_id, now)
        except (PortalUnavailable, StoreError) as exc:
            log.info("device check failed, staying signed out: %s", exc)
            return None
        if not reauthorize:
            session.pop(SILENT_KEY, None)  # the answer changed: a later "reauthorize" may try again
            return None
        tried = session.get(SILENT_KEY, {})
        recently = tried and now < datetime.fromtimestamp(tried["at"], UTC) + self.silent_retry
        if recently and tried.get("device") == g.gatehouse_device_id:
            return None  # loop protection: prompt=none was tried here recently
        # A view needing step-up asks it silently too: answered at once when the portal's session has the second
        # step, else interaction_required, quiet like login_required; the view then asks with the user.
        acr = getattr(current_app.view_functions.get(request.endpoint or ""), "gatehouse_acr", None)
        return redirect(url_for("gatehouse.login", silent=1, next=local_path(), acr=acr))
