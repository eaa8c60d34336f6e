"""A small cache in front of the database: in-process by default, Redis when configured.

The database stays the source of truth (DESIGN §3, security-anchors D5): a miss, or a Redis
that is down, slow or flushed, means "ask the database", never "valid".
"""

import logging
import threading
import time
from typing import Protocol

import redis

log = logging.getLogger(__name__)

CACHE_EXTENSION_KEY = "gatehouse.cache"
# After a Redis fault, skip it for this long instead of paying a timeout on every request.
REDIS_RETRY_AFTER_SECONDS = 2.0
REDIS_SOCKET_TIMEOUT_SECONDS = 0.25


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...
    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Set only when absent, so a reader never overwrites a newer tombstone."""

    def delete(self, key: str) -> None: ...


# Another process cannot invalidate this process's entries, so they live only briefly: with several
# workers and no Redis, a revocation made on one worker reaches the others within this bound.
IN_PROCESS_MAX_TTL_SECONDS = 2


class InProcessCache:
    """A dict with expiry, shared by the threads of one process; Redis is the cache for several processes."""

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

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (self._timer() + min(ttl_seconds, self._max_ttl), value)

    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            if self.get(key) is None:
                self._entries[key] = (self._timer() + min(ttl_seconds, self._max_ttl), value)

    def delete(self, key: str) -> None:
        self._entries.pop(key, None)


class RedisCache:
    """Redis, degrading to "always miss" while it is unreachable, and recovering by itself."""

    def __init__(self, url: str, prefix: str = "gh:", retry_after_seconds: float = REDIS_RETRY_AFTER_SECONDS):
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        )
        self._prefix = prefix
        self._retry_after = retry_after_seconds
        self._down_until = 0.0
        # Deletes that failed while Redis was down: replayed before trusting Redis again,
        # so a revocation made during an outage cannot be undone by a stale entry.
        self._pending_deletes: set[str] = set()
        self._lock = threading.Lock()

    def _available(self) -> bool:
        if time.monotonic() < self._down_until:
            return False
        if self._pending_deletes:
            return self._replay_pending_deletes()
        return True

    def _replay_pending_deletes(self) -> bool:
        with self._lock:
            keys = list(self._pending_deletes)
            try:
                self._client.delete(*keys)
            except redis.RedisError as exc:
                self._fault("replay deletes", exc)
                return False
            self._pending_deletes.difference_update(keys)
            return True

    def _fault(self, action: str, exc: Exception) -> None:
        self._down_until = time.monotonic() + self._retry_after
        log.warning("redis unavailable during %s (%s): falling back to the database", action, type(exc).__name__)

    def get(self, key: str) -> bytes | None:
        if not self._available():
            return None
        try:
            return self._client.get(self._prefix + key)
        except redis.RedisError as exc:
            self._fault("get", exc)
            return None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if not self._available():
            return
        try:
            self._client.set(self._prefix + key, value, ex=ttl_seconds)
        except redis.RedisError as exc:
            with self._lock:
                # A failed tombstone must still reach Redis before Redis is trusted again.
                self._pending_deletes.add(self._prefix + key)
            self._fault("set", exc)

    def add(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if not self._available():
            return
        try:
            self._client.set(self._prefix + key, value, ex=ttl_seconds, nx=True)
        except redis.RedisError as exc:
            self._fault("add", exc)

    def delete(self, key: str) -> None:
        try:
            self._client.delete(self._prefix + key)
        except redis.RedisError as exc:
            with self._lock:
                self._pending_deletes.add(self._prefix + key)
            self._fault("delete", exc)


def build_cache(config: dict) -> Cache:
    if config.get("REDIS_URL"):
        return RedisCache(
            config["REDIS_URL"],
            prefix=config.get("CACHE_KEY_PREFIX", "gh:"),
            retry_after_seconds=config.get("REDIS_RETRY_AFTER_SECONDS", REDIS_RETRY_AFTER_SECONDS),
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
