"""A small cache in front of the database: in-process by default, Redis when configured.

The database stays the source of truth (DESIGN §3, security-anchors D5): a miss, or a Redis
that is down, slow or flushed, means "ask the database", never "valid".
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import redis

from app.clock import now
from app.near_cache import LEASE_SECONDS as NEAR_LEASE_SECONDS
from app.near_cache import NearCache

log = logging.getLogger(__name__)

CACHE_EXTENSION_KEY = "gatehouse.cache"
# After a Redis fault, skip it for this long instead of paying a timeout on every request.
REDIS_RETRY_AFTER_SECONDS = 2.0
REDIS_SOCKET_TIMEOUT_SECONDS = 0.25
# An instance that saw no fault still looks at the invalidation outbox this often (app clock) before it trusts
# Redis, so an invalidation another instance could not write is honoured here within this bound after Redis
# answers again, with or without the worker (issue 9: every instance refuses within 2 s).
OUTBOX_RECHECK_SECONDS = 1.0
# A tombstone (what a revocation writes) starts with this byte, so the cache knows one without knowing the domain: it
# is final (a revoked session, grant or client never comes back), and no weaker write ever replaces it.
TOMBSTONE_PREFIX = b"\x00"
# The value format's version is part of every key: entries an older release wrote (its tombstones had no
# TOMBSTONE_PREFIX) are never read by this one, so a rolling upgrade starts from misses, which ask the database.
DEFAULT_KEY_PREFIX = "gh:2:"
# "Stale, ask the database": what an invalidation that is not a revocation writes instead of deleting. A delete would
# leave a gap: a reader that read the row before the change could `add` (set-if-absent) its old state back right
# after it. The marker fills that gap: add cannot replace it and get reads it as a miss. It must outlive any read →
# add window (a database read and one Redis round trip, well under a second; Redis calls time out at 0.25 s), and
# every request reads the database while it lives, so a few seconds.
STALE = b"\x01stale"
STALE_MARKER_SECONDS = 5


@dataclass(frozen=True)
class Invalidation:
    """A cache change a revocation depends on: write a tombstone (value, starting with TOMBSTONE_PREFIX, for
    ttl_seconds), or, without a value, mark the entry stale (STALE, unless it holds a tombstone)."""

    key: str
    value: bytes | None = None
    ttl_seconds: int = 0


class Cache(Protocol):
    # Whether other processes read this cache: only then must its invalidations survive a fault (the outbox).
    shared: bool

    def get(self, key: str) -> bytes | None:
        """The value, or None for a miss (absent, or marked stale)."""

    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Set only when absent, so a reader never overwrites a newer tombstone or stale marker."""

    def invalidate(self, changes: Sequence[Invalidation]) -> bool:
        """Apply the changes; False when the cache did not take them (they stay in the outbox)."""

    def settle_after_fault(self) -> None:
        """After an invalidation the cache did not take: return once no process can still answer from a copy it
        made wrong (app.near_cache), before the revocation is reported done."""


# Another process cannot invalidate this process's entries, so they live only briefly: with several
# workers and no Redis, a revocation made on one worker reaches the others within this bound.
IN_PROCESS_MAX_TTL_SECONDS = 2


class InProcessCache:
    """A dict with expiry, shared by the threads of one process; Redis is the cache for several processes."""

    shared = False

    def __init__(
        self, max_entries: int = 100_000, max_ttl_seconds: float = IN_PROCESS_MAX_TTL_SECONDS, timer=time.monotonic
    ):
        self._timer = timer
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._max_ttl = max_ttl_seconds

    def get(self, key: str) -> bytes | None:
        value = self._live(key)
        return None if value == STALE else value

    def _live(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < self._timer():
            self._entries.pop(key, None)
            return None
        return value

    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            if self._live(key) is None:
                self._put(key, value, min(ttl_seconds, self._max_ttl))

    def invalidate(self, changes: Sequence[Invalidation]) -> bool:
        with self._lock:
            for change in changes:
                if change.value is not None:
                    self._put(change.key, change.value, min(change.ttl_seconds, self._max_ttl))
                elif not (self._live(change.key) or b"").startswith(TOMBSTONE_PREFIX):
                    # Not capped: a marker is a miss anyway, and it must outlive a reader's read → add window.
                    self._put(change.key, STALE, STALE_MARKER_SECONDS)
        return True

    def settle_after_fault(self) -> None:
        """Never called: this cache always takes its invalidations."""

    def _put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (self._timer() + ttl_seconds, value)


class RedisCache:
    """Redis, degrading to "always miss" while it is unreachable, and recovering by itself; with a near cache in
    each process (app.near_cache) that Redis invalidates, so a warm read makes no round trip.

    Its answers are trusted only once the invalidation outbox is empty (before_trust replays what is left into
    Redis and says whether anything remains): at start, after any fault of this process, and every
    OUTBOX_RECHECK_SECONDS, so a tombstone another process failed to write is never undone by a stale entry. The
    near cache is asked only when Redis would be, and only under its lease.
    """

    shared = True

    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_KEY_PREFIX,
        retry_after_seconds: float = REDIS_RETRY_AFTER_SECONDS,
        before_trust: Callable[["RedisCache"], bool] | None = None,
        near_lease_seconds: float = NEAR_LEASE_SECONDS,
    ):
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        )
        self._prefix = prefix
        self._near = NearCache(self._client, url, prefix, near_lease_seconds)
        self._retry_after = retry_after_seconds
        self._before_trust = before_trust
        self._down_until = 0.0  # monotonic: about not paying timeouts, so wall time
        self._trusted_until = 0.0  # app clock: a correctness bound, which tests move
        self._faults = 0
        self._failing_since: float | None = None  # monotonic: the first invalidation refused since Redis last answered

    def _trusted(self) -> bool:
        if time.monotonic() < self._down_until:
            return False
        if self._before_trust is None:
            return True
        moment = now().timestamp()
        if moment < self._trusted_until:
            return True
        faults = self._faults
        if not self._before_trust(self):
            return False
        if faults == self._faults:  # a fault during the replay leaves something new to look for
            self._trusted_until = moment + OUTBOX_RECHECK_SECONDS
        return True

    def _fault(self, action: str, exc: Exception) -> None:
        self._faults += 1
        self._trusted_until = 0.0
        self._down_until = time.monotonic() + self._retry_after
        log.warning("redis unavailable during %s (%s): falling back to the database", action, type(exc).__name__)

    def get(self, key: str) -> bytes | None:
        if not self._trusted():
            return None
        near = self._near
        try:
            if not near.usable():
                value = self._client.get(self._prefix + key)
                self._failing_since = None  # Redis answered: a later failure is a new outage
            elif (value := near.get(key)) is None:
                generation = near.generation
                value, ttl_ms = self._read_with_lifetime(self._prefix + key)
                self._failing_since = None
                if value is not None and value != STALE:
                    near.keep(key, value, ttl_ms / 1000, generation)
        except redis.RedisError as exc:
            self._fault("get", exc)
            return None
        # Without decode_responses the client answers bytes; redis-py's stubs allow str for either setting.
        return None if value == STALE else cast(bytes | None, value)

    def _read_with_lifetime(self, redis_key: str) -> tuple[bytes | None, int]:
        """The value and its remaining lifetime in ms, in one round trip."""
        pipeline = self._client.pipeline(transaction=False)
        pipeline.get(redis_key)
        pipeline.pttl(redis_key)
        value, ttl_ms = pipeline.execute()
        return value, ttl_ms

    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """No outbox check: an add never replaces an entry, and a replayed tombstone or marker replaces the add."""
        if time.monotonic() < self._down_until:
            return
        generation = self._near.generation
        try:
            added = self._client.set(self._prefix + key, value, ex=ttl_seconds, nx=True)
        except redis.RedisError as exc:
            self._fault("add", exc)
            return
        if added:
            self._near.keep(key, value, ttl_seconds, generation)

    def invalidate(self, changes: Sequence[Invalidation]) -> bool:
        """One round trip, tried even during the retry pause: a revocation (or the worker) tries its hardest. Then
        this process's near cache forgets the entries, and every other one has (app.near_cache)."""
        arguments: list = []
        for change in changes:
            if change.value is None:
                arguments.append("0")
            else:
                arguments += ["1", change.value, max(change.ttl_seconds, 1)]
        names = [change.key for change in changes]
        attempted = time.monotonic()
        try:
            epoch, number, new_epoch = self._publish(names, arguments)
        except redis.RedisError as exc:
            self._fault("invalidate", exc)
            self._failing_since = min(self._failing_since or attempted, attempted)
            return False
        self._failing_since = None
        self._near.drop(names)
        self._near.await_acknowledgements(epoch, number, new_epoch)
        return True

    def _publish(self, names: list[str], arguments: list) -> tuple[str, int, bool]:
        cache_keys = [self._prefix + name for name in names]
        return self._near.publish(cache_keys, names, arguments, STALE, STALE_MARKER_SECONDS)

    def settle_after_fault(self) -> None:
        if self._failing_since is not None:
            self._near.settle_after_fault(self._failing_since)


def build_cache(config: dict) -> Cache:
    if config.get("REDIS_URL"):
        # The outbox lives in the database, a layer above this module.
        from app.invalidation.services import replay_before_trust

        return RedisCache(
            config["REDIS_URL"],
            prefix=config.get("CACHE_KEY_PREFIX", DEFAULT_KEY_PREFIX),
            retry_after_seconds=config.get("REDIS_RETRY_AFTER_SECONDS", REDIS_RETRY_AFTER_SECONDS),
            before_trust=replay_before_trust,
            near_lease_seconds=config.get("NEAR_CACHE_LEASE_SECONDS", NEAR_LEASE_SECONDS),
        )
    return InProcessCache()


def cache() -> Cache:
    from flask import current_app

    return current_app.extensions[CACHE_EXTENSION_KEY]


def after_commit(session, action) -> None:
    """Run action once the current transaction has committed (dropped on rollback)."""
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(action)


AFTER_COMMIT_KEY = "gatehouse.after_commit"


def _run_after_commit(session) -> None:
    for action in session.info.pop(AFTER_COMMIT_KEY, []):
        action()


def _drop_after_commit(session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)


def install_commit_hooks(session_class) -> None:
    from sqlalchemy import event

    if not event.contains(session_class, "after_commit", _run_after_commit):
        event.listen(session_class, "after_commit", _run_after_commit)
        event.listen(session_class, "after_soft_rollback", lambda s, _tx: _drop_after_commit(s))
