"""The fixed windows rate limits are counted in (app.security.ratelimit charges them).

- LocalWindows: this process's memory, exact. The only counting without shared storage, and the fallback when it
  fails. A window opens with its first hit and lasts the limit's period, as `limits`' fixed windows do.
- SharedBatches: the shared storage (Redis), in batches, for the limits every client-app call pays (the grant and
  device checks): a process counts up to a 64th of the limit in its own memory, then adds them to Redis in one round
  trip, at least once a second, and one by one once Redis says half the limit is used. Below half the limit nobody
  is refused, so batching changes nothing there; past it every hit is counted in Redis before it is let through. N
  processes can let at most N batches (N/64 of the limit) more through in a window than an exact count would.
"""

import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.strategies import FixedWindowRateLimiter

# A process counts at most this share of a limit (and never more than MAX_BATCH hits) before telling Redis.
BATCH_DIVISOR = 64
MAX_BATCH = 1000
# ... and tells it at least this often, so that other processes' hits are seen.
SYNC_SECONDS = 1.0
# Windows that ended are swept out once this many are kept.
SWEEP_AT = 10_000


def seconds_until(reset_at: float, now: float) -> int:
    return max(1, math.ceil(reset_at - now))  # never "retry after 0"


class LocalWindows:
    """Exact fixed windows in this process: a lock and a dict (no timer threads: `limits`' MemoryStorage starts one
    whenever its last has finished, which under load cost more than the rest of a grant check)."""

    def __init__(self) -> None:
        self._windows: dict[str, list] = {}  # counter key -> [ends at (time.time), hits]
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, counter: str) -> int | None:
        """Count one hit; None when the window allows it, else the seconds until the window ends."""
        now = time.time()
        with self._lock:
            window = self._windows.get(counter)
            if window is None or window[0] <= now:
                if len(self._windows) >= SWEEP_AT:
                    self._sweep(now)
                window = self._windows[counter] = [now + item.get_expiry(), 0]
            window[1] += 1
            return None if window[1] <= item.amount else seconds_until(window[0], now)

    def give_back(self, counter: str) -> None:
        """Undo one hit of a window still open; a window that has ended gives no credit to the next."""
        now = time.time()
        with self._lock:
            window = self._windows.get(counter)
            if window is not None and window[0] > now and window[1] > 0:
                window[1] -= 1

    def _sweep(self, now: float) -> None:
        for counter in [c for c, window in self._windows.items() if window[0] <= now]:
            del self._windows[counter]


@dataclass
class _Batch:
    pending: int = 0  # hits let through here and not yet added to Redis
    known: int = 0  # the shared count this process last read (stale by at most SYNC_SECONDS, or a batch)
    synced_at: float = -math.inf  # time.time() of that (what `limits` reads too)


class SharedBatches:
    """One limit's windows in shared storage (`limits`' Redis storage, its keys and its expiry script), counted in
    batches (see the module's docstring). Raises what the storage raises; the caller falls back to LocalWindows.
    Once Redis opens a new window, the next count read here (within SYNC_SECONDS) shows it; until then a stale,
    higher count only sends more hits to Redis."""

    def __init__(self, strategy: FixedWindowRateLimiter) -> None:
        self._storage = strategy.storage
        self._batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, counter: str) -> int | None:
        batch_size = max(1, min(MAX_BATCH, item.amount // BATCH_DIVISOR))
        clock = time.time()
        with self._lock:
            batch = self._batch(counter)
            unhurried = 2 * batch.known < item.amount and batch.pending + 1 < batch_size
            if unhurried and clock - batch.synced_at < SYNC_SECONDS:
                batch.pending += 1
                return None
            adding, batch.pending = batch.pending + 1, 0
        count = self._storage.incr(counter, item.get_expiry(), amount=adding)  # one round trip
        with self._lock:
            batch = self._batch(counter)
            batch.known, batch.synced_at = count, clock
        if count <= item.amount:
            return None
        return seconds_until(self._storage.get_expiry(counter), time.time())

    def give_back(self, item: RateLimitItem, counter: str) -> None:
        with self._lock:
            batch = self._batch(counter)
            if batch.pending > 0:
                batch.pending -= 1
                return
        if self._storage.incr(counter, item.get_expiry(), amount=-1) < 0:
            # The window ended in between: the counter was just created at -1; never leave credit in a new one.
            self._storage.incr(counter, item.get_expiry(), amount=1)

    def _batch(self, counter: str) -> _Batch:
        batch = self._batches.get(counter)
        if batch is None:
            if len(self._batches) >= SWEEP_AT:
                self._batches = {c: b for c, b in self._batches.items() if b.pending}
            batch = self._batches[counter] = _Batch()
        return batch
