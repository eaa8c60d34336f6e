"""Server-side memory of the kit: revoked sids, seen jtis, cached portal answers; pluggable, in-process by default."""

import json
import threading
from datetime import datetime
from typing import Any, Protocol


class Store(Protocol):
    """What the kit needs from a store; a Redis one maps add to SET NX EX and set to SET EX (shared by workers)."""

    def get(self, key: str, now: datetime) -> Any | None:
        """The value kept under key, or None once it has expired."""

    def set(self, key: str, value: Any, expires_at: datetime, now: datetime) -> None:
        """Keep value under key until expires_at."""

    def add(self, key: str, value: Any, expires_at: datetime, now: datetime) -> bool:
        """Keep value under key unless a live one is there already; True when it was added (atomic)."""

    def delete(self, key: str) -> None:
        """Forget key."""


class MemoryStore:
    """A dict with expiry for one process (one gunicorn worker); bounded, expired entries swept as it fills."""

    def __init__(self, max_entries: int = 100_000):
        self._items: dict[str, tuple[Any, datetime]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: str, now: datetime) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[1] <= now:
                return None
            return item[0]

    def set(self, key: str, value: Any, expires_at: datetime, now: datetime) -> None:
        with self._lock:
            self._make_room(now)
            self._items[key] = (value, expires_at)

    def add(self, key: str, value: Any, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[1] > now:
                return False
            self._make_room(now)
            self._items[key] = (value, expires_at)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)

    def _make_room(self, now: datetime) -> None:
        if len(self._items) < self._max:
            return
        for key in [k for k, (_, expires) in self._items.items() if expires <= now]:
            del self._items[key]
        while len(self._items) >= self._max:  # still full of live entries: drop the oldest inserted
            del self._items[next(iter(self._items))]


class StoreError(RuntimeError):
    """The shared store cannot be reached; the kit falls back to the grant check, or asks the portal to retry."""


class RedisStore:
    """The store on Redis, shared by every worker: add is SET NX PX (atomic), values are JSON."""

    def __init__(self, url: str, prefix: str = "gatehouse-rp:", timeout: float = 0.25):
        import redis  # only when configured

        self._redis, self._errors = redis.Redis.from_url(url, socket_timeout=timeout), redis.RedisError
        self._prefix = prefix

    def _call(self, method: str, key: str, *args, **kwargs):
        try:
            return getattr(self._redis, method)(self._prefix + key, *args, **kwargs)
        except self._errors as exc:
            raise StoreError(f"redis {method}: {exc}") from exc

    @staticmethod
    def _ms(expires_at: datetime, now: datetime) -> int:
        return max(1, int((expires_at - now).total_seconds() * 1000))

    def get(self, key: str, now: datetime) -> Any | None:
        raw = self._call("get", key)
        return json.loads(raw) if raw is not None else None

    def set(self, key: str, value: Any, expires_at: datetime, now: datetime) -> None:
        self._call("set", key, json.dumps(value), px=self._ms(expires_at, now))

    def add(self, key: str, value: Any, expires_at: datetime, now: datetime) -> bool:
        return bool(self._call("set", key, json.dumps(value), px=self._ms(expires_at, now), nx=True))

    def delete(self, key: str) -> None:
        self._call("delete", key)
