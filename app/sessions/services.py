"""The session registry: start, check, touch and end portal sessions."""

import contextlib
import functools
import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

from flask import current_app

from app.accounts.models import Account, User
from app.audit import services as audit
from app.audit.tags import EventTag
from app.cache import TOMBSTONE_PREFIX, Invalidation, cache
from app.extensions import db
from app.invalidation.services import invalidate
from app.sessions import methods
from app.sessions.codec import SessionHandle
from app.sessions.devices import GeoLocator, RequestMeta, device_name
from app.sessions.models import UserSession
from app.sessions.policy import PolicySettings, SessionPolicy
from app.sessions.signals import session_ended

# DESIGN §3: activity is written at most once a minute per session, never once per request.
ACTIVITY_WRITE_INTERVAL = timedelta(seconds=60)
# The cookie's own signed expiry is a coarser, second bound: twice the idle window, re-issued
# past half of it, so it never ends a session the registry still considers alive.
COOKIE_WINDOW_IDLE_MULTIPLE = 2
PUBLIC_ID_BYTES = 32
CACHE_KEY_PREFIX = "session:"
TOMBSTONE = TOMBSTONE_PREFIX + b"ended"

REASON_SIGN_OUT = "sign_out"
REASON_REPLACED = "replaced_by_sign_in"
REASON_IDLE = "idle_timeout"
REASON_ABSOLUTE = "absolute_timeout"
REASON_USER_DISABLED = "user_disabled"


class SessionEnded(Exception):
    """The handle names no live session (revoked, expired, unknown)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActiveSession:
    """What every request needs to know about its session, cacheable as a whole."""

    id: int
    public_id: str
    user_id: int
    idle_minutes: int
    authenticated_at: datetime
    last_used_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    auth_methods: str = methods.PASSWORD  # last: states cached before the field existed still load

    @classmethod
    def of(cls, row: UserSession) -> "ActiveSession":
        return cls(
            row.id,
            row.public_id,
            row.user_id,
            row.idle_minutes,
            row.authenticated_at,
            row.last_used_at,
            row.idle_expires_at,
            row.absolute_expires_at,
            row.auth_methods,
        )

    def dumps(self) -> bytes:
        data = {k: (v.timestamp() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
        return json.dumps(data).encode()

    @classmethod
    def loads(cls, raw: bytes) -> "ActiveSession":
        """Parsed once per cached value (a frozen dataclass, safe to share): every signed-in request reads one."""
        return _loaded_state(raw)

    def expired_reason(self, now: datetime) -> str | None:
        if now > self.absolute_expires_at:
            return REASON_ABSOLUTE
        if now > self.idle_expires_at:
            return REASON_IDLE
        return None

    def cookie_expiry(self, now: datetime) -> datetime:
        window = timedelta(minutes=self.idle_minutes * COOKIE_WINDOW_IDLE_MULTIPLE)
        return min(now + window, self.absolute_expires_at)


@functools.lru_cache(maxsize=4096)
def _loaded_state(raw: bytes) -> ActiveSession:
    data = json.loads(raw)
    for key in ("authenticated_at", "last_used_at", "idle_expires_at", "absolute_expires_at"):
        data[key] = datetime.fromtimestamp(data[key], UTC)
    return ActiveSession(**data)


def policy_settings() -> PolicySettings:
    return PolicySettings.from_config(current_app.config)


def account_policy(account: Account) -> SessionPolicy:
    return policy_settings().effective(account.idle_minutes, account.absolute_minutes)


def start_session(user: User, meta: RequestMeta, now: datetime, auth_methods: str = methods.PASSWORD) -> UserSession:
    """Open a new session with a fresh public id (no fixation) under the account's current policy, recording how
    it signed in (app/sessions/methods.py)."""
    policy = account_policy(user.account)
    absolute = now + timedelta(minutes=policy.absolute_minutes)
    row = UserSession(
        public_id=new_public_id(),
        user_id=user.id,
        device_id=meta.device_id,
        device_name=device_name(meta.user_agent),
        user_agent=meta.user_agent[:512],
        ip=meta.ip,
        location=_locator().locate(meta.ip),
        created_at=now,
        authenticated_at=now,
        auth_methods=auth_methods,
        last_used_at=now,
        idle_minutes=policy.idle_minutes,
        idle_expires_at=min(now + timedelta(minutes=policy.idle_minutes), absolute),
        absolute_expires_at=absolute,
    )
    db.session.add(row)
    db.session.flush()
    return row


def check_session(public_id: str, user_id: int, now: datetime, *, touch: bool) -> ActiveSession:
    """Return the live session behind a cookie, or raise SessionEnded.

    touch=False is for background polling, which is not activity (DESIGN §3).
    """
    state = _cached_state(public_id)
    if state is None:
        state = _state_from_database(public_id)
    if state.user_id != user_id:
        raise SessionEnded("unknown")
    _end_if_past_expiry(state, now)
    if touch and now - state.last_used_at >= ACTIVITY_WRITE_INTERVAL:
        state = _record_activity(state, now)
    return state


def cached_live_state(public_id: str, user_id: int, now: datetime) -> ActiveSession | None:
    """check_session(touch=False) for a poll answered in front of Flask (app/web/lane.py), from the cache alone and
    with no side effect: the session's state when it is cached, this user's, and unexpired; otherwise None, and the
    full check (which may end it, or read the registry) is check_session's."""
    raw = cache().get(CACHE_KEY_PREFIX + public_id)
    if raw is None or raw.startswith(TOMBSTONE_PREFIX):
        return None
    state = ActiveSession.loads(raw)
    return state if state.user_id == user_id and state.expired_reason(now) is None else None


def end_if_expired(session: UserSession, now: datetime) -> None:
    """Called when a client app uses a grant: a portal session past an expiry ends here (taking its grants
    with it) even if its browser never comes back. Client activity is not portal activity: the owner's idle
    timeout is about the device."""
    _end_if_past_expiry(ActiveSession.of(session), now)


def _end_if_past_expiry(state: ActiveSession, now: datetime) -> None:
    reason = state.expired_reason(now)
    if reason:
        _end_ids([state.id], reason, now, tag=EventTag.SESSION_EXPIRED)
        raise SessionEnded(reason)


def extend_idle(state: ActiveSession, now: datetime) -> ActiveSession:
    """Slide the idle window from now, never past the absolute expiry."""
    return _record_activity(state, now, force=True)


def end_session(session_id: int, reason: str, now: datetime, *, tag: EventTag, ip: str | None = None) -> bool:
    """End one session (sign-out and friends); False if it had already ended."""
    return bool(_end_ids([session_id], reason, now, tag=tag, ip=ip))


def end_expired_cookie_session(handle: SessionHandle, now: datetime) -> None:
    """A genuine cookie past its exp: end its row too if the registry agrees it has expired."""
    with contextlib.suppress(SessionEnded):
        check_session(handle.public_id, handle.user_id, now, touch=False)


def _cached_state(public_id: str) -> ActiveSession | None:
    raw = cache().get(CACHE_KEY_PREFIX + public_id)
    if raw is None:
        return None
    if raw == TOMBSTONE:
        raise SessionEnded(_ended_reason(public_id))
    return ActiveSession.loads(raw)


def _ended_reason(public_id: str) -> str:
    """Why a tombstoned session ended, from the registry: read once per ended cookie, which is cleared next, so
    the device can be told it was signed out elsewhere rather than that it expired."""
    row = UserSession.by_public_id(public_id)
    return (row.revoked_reason if row is not None else None) or "revoked"


def _state_from_database(public_id: str) -> ActiveSession:
    row = UserSession.by_public_id(public_id)
    if row is None:
        raise SessionEnded("unknown")
    if row.revoked_at is not None:
        # Final: the tombstone replaces a stale marker too, so the next request of this cookie reads no row for state.
        cache().invalidate([Invalidation(CACHE_KEY_PREFIX + public_id, TOMBSTONE, _cache_ttl())])
        raise SessionEnded(row.revoked_reason or "revoked")
    state = ActiveSession.of(row)
    cache().add(CACHE_KEY_PREFIX + public_id, state.dumps(), _cache_ttl())
    return state


def _record_activity(state: ActiveSession, now: datetime, *, force: bool = False) -> ActiveSession:
    idle_expires = min(now + timedelta(minutes=state.idle_minutes), state.absolute_expires_at)
    # Compare-and-set on last_used_at: of several requests in the same minute only one writes; and on idle_minutes:
    # a window computed from a cached state older than a policy change applied now is never written.
    not_after = now if force else now - ACTIVITY_WRITE_INTERVAL
    if not UserSession.record_activity(
        state.id, now, idle_expires, not_after=not_after, idle_minutes=state.idle_minutes
    ):
        forget_cached([state.public_id])  # whichever it was, the cached state is older than the row: reread it
        return state
    forget_cached([state.public_id])
    return ActiveSession(**{**asdict(state), "last_used_at": now, "idle_expires_at": idle_expires})


def end_sessions(*criteria, reason: str, now: datetime) -> list[tuple[int, str, int]]:
    """End every live session matching criteria in one statement; the one path every sign-out takes.

    Returns (id, public_id, user_id) of the sessions ended; their cache entries become tombstones, durably
    (recorded in this transaction, so no instance trusts a stale "alive" entry once the cache answers again).
    """
    ended = UserSession.end_where(*criteria, at=now, reason=reason)
    if ended:
        ended_ids = [session_id for session_id, _, _ in ended]
        # The application itself, not the proxy (Flask's signals documentation); the proxy is typed as Flask.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        session_ended.send(app, session_ids=ended_ids, reason=reason, now=now)
    ttl = _cache_ttl()
    invalidate([Invalidation(CACHE_KEY_PREFIX + public_id, TOMBSTONE, ttl) for _, public_id, _ in ended])
    return ended


def _end_ids(ids: list[int], reason: str, now: datetime, *, tag: EventTag, ip: str | None = None) -> list:
    ended = end_sessions(UserSession.id.in_(ids), reason=reason, now=now)
    for session_id, _public_id, user_id in ended:
        audit.record(tag, user_id=user_id, session_id=session_id, ip=ip, reason=reason)
    return ended


def forget_cached(public_ids: list[str]) -> None:
    """Mark these sessions stale in the cache once the transaction commits (durably): the next requests read the
    database, and a reader that read the row before this change cannot add its state back."""
    invalidate([Invalidation(CACHE_KEY_PREFIX + public_id) for public_id in public_ids])


def mark_reauthenticated(state: ActiveSession, now: datetime, auth_methods: str = methods.PASSWORD) -> ActiveSession:
    """The user proved their password again on this device (freshness for sensitive actions, OIDC prompt=login and
    max_age). OWASP Session Management: a new session id on every privilege change, as on sign-in: the row gets a new
    public id (grants keep pointing at the row), and the old id's cache entry becomes a tombstone once this commits,
    so the old cookie is refused by every instance. Returns the state to set the new cookie from; raises SessionEnded
    when the session ended meanwhile."""
    public_id = new_public_id()
    if not UserSession.reauthenticated(state.id, public_id, now, auth_methods):
        raise SessionEnded("revoked")
    invalidate([Invalidation(CACHE_KEY_PREFIX + state.public_id, TOMBSTONE, _cache_ttl())])
    return replace(state, public_id=public_id, authenticated_at=now, auth_methods=auth_methods)


def add_method(state: ActiveSession, method: str) -> ActiveSession:
    """A second factor proved on this device after sign-in (an authenticator app confirmed by its code, a passkey
    just made): the session counts it from now, so the change that follows is not asked for again, under a new id (a
    privilege change, as re-authentication); its authentication time stays the password's. Raises SessionEnded."""
    public_id, used = new_public_id(), methods.joined([*state.auth_methods.split(), method])
    if not UserSession.reauthenticated(state.id, public_id, None, used):
        raise SessionEnded("revoked")
    invalidate([Invalidation(CACHE_KEY_PREFIX + state.public_id, TOMBSTONE, _cache_ttl())])
    return replace(state, public_id=public_id, auth_methods=used)


def new_public_id() -> str:
    return secrets.token_urlsafe(PUBLIC_ID_BYTES)


def _cache_ttl() -> int:
    return current_app.config["SESSION_CACHE_TTL_SECONDS"]


def _locator() -> GeoLocator:
    return current_app.extensions["gatehouse.geoip"]
