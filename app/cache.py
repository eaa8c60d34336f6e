"""A small cache in front of the database: in-process by default, Redis when configured.

The database stays the source of truth (DESIGN §3, security-anchors D5): a miss, or a Redis
that is down, slow or flushed, means "ask the database", never "valid".
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from app.clock import now

log = logging.getLogger(__name__)

CACHE_EXTENSION_KEY = "gatehouse.cache"
# After a Redis fault, skip it for this long instead of paying a timeout on every request.
REDIS_RETRY_AFTER_SECONDS = 2.0
REDIS_SOCKET_TIMEOUT_SECONDS = 0.25
# An instance that saw no fault still looks at the invalidation outbox this often (app clock) before it trusts
# Redis, so an invalidation another instance could not write is honoured here within this bound after Redis
# answers again, with or without the worker (issue 9: every instance refuses within 2 s).
OUTBOX_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Invalidation:
    """A cache change a revocation depends on: write a tombstone (value, for ttl_seconds), or drop the entry."""

    key: str
    value: bytes | None = None
    ttl_seconds: int = 0


class Cache(Protocol):
    # Whether other processes read this cache: only then must its invalidations survive a fault (the outbox).
    shared: bool

    def get(self, key: str) -> bytes | None: ...
    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Set only when absent, so a reader never overwrites a newer tombstone."""

    def invalidate(self, changes: Sequence[Invalidation]) -> bool:
        """Apply the changes; False when the cache did not take them (they stay in the outbox)."""


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
            if self.get(key) is None:
                self._put(key, value, ttl_seconds)

    def invalidate(self, changes: Sequence[Invalidation]) -> bool:
        with self._lock:
            for change in changes:
                if change.value is None:
                    self._entries.pop(change.key, None)
                else:
                    self._put(change.key, change.value, change.ttl_seconds)
        return True

    def _put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (self._timer() + min(ttl_seconds, self._max_ttl), value)


class RedisCache:
    """Redis, degrading to "always miss" while it is unreachable, and recovering by itself.

    Its answers are trusted only once the invalidation outbox is empty (before_trust replays what is left into
    Redis and says whether anything remains): at start, after any fault of this process, and every
    OUTBOX_RECHECK_SECONDS, so a tombstone another process failed to write is never undone by a stale entry.
    """

    shared = True

    def __init__(
        self,
        url: str,
        prefix: str = "gh:",
        retry_after_seconds: float = REDIS_RETRY_AFTER_SECONDS,
        before_trust: Callable[["RedisCache"], bool] | None = None,
    ):
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        )
        self._prefix = prefix
        self._retry_after = retry_after_seconds
        self._before_trust = before_trust
        self._down_until = 0.0  # monotonic: about not paying timeouts, so wall time
        self._trusted_until = 0.0  # app clock: a correctness bound, which tests move
        self._faults = 0

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
        try:
            return self._client.get(self._prefix + key)
        except redis.RedisError as exc:
            self._fault("get", exc)
            return None

    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """No outbox check: an add never replaces an entry, and a replayed tombstone replaces the add."""
        if time.monotonic() < self._down_until:
            return
        try:
            self._client.set(self._prefix + key, value, ex=ttl_seconds, nx=True)
        except redis.RedisError as exc:
            self._fault("add", exc)

    def invalidate(self, changes: Sequence[Invalidation]) -> bool:
        """One round trip, tried even during the retry pause: a revocation (or the worker) tries its hardest."""
        pipeline = self._client.pipeline(transaction=False)
        for change in changes:
            if change.value is None or change.ttl_seconds <= 0:
                pipeline.delete(self._prefix + change.key)
            else:
                pipeline.set(self._prefix + change.key, change.value, ex=change.ttl_seconds)
        try:
            pipeline.execute()
        except redis.RedisError as exc:
            self._fault("invalidate", exc)
            return False
        return True


def build_cache(config: dict) -> Cache:
    if config.get("REDIS_URL"):
        # The outbox lives in the database, a layer above this module.
        from app.invalidation.services import replay_before_trust

        return RedisCache(
            config["REDIS_URL"],
            prefix=config.get("CACHE_KEY_PREFIX", "gh:"),
            retry_after_seconds=config.get("REDIS_RETRY_AFTER_SECONDS", REDIS_RETRY_AFTER_SECONDS),
            before_trust=replay_before_trust,
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
