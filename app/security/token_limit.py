"""The charge behind the token endpoints' limit on failed client authentication (app.security.ratelimit's
limit_failed_client_authentication), in one Redis round trip per attempt (issue 13).

Every attempt is charged before its client is authenticated, so concurrent guesses can never all pass a check made
before any of them was counted; a success gives its hit back. In Redis (one plain Redis, not Redis Cluster: one
script touches several counters) the hit a success gives back is owed, not sent: this process's next charge carries
everything it owes in the same round trip (a small Lua script), where the charge and the give-back used to make a
round trip each. Meanwhile the owed hits still count, so the count errs towards limiting, by at most the successes
this process finished since its last charge, within the window they were charged to. A hit is given back only to
the window it was charged to: once that window may have ended (its end as measured before the charge, less a margin
for the round trip), the hit owed is dropped, so a new window never starts with credit.

Better still, a success's hit is kept (up to a quarter of the window's limit per process): Redis goes on counting
it, and this process's next attempt in the same window takes it instead of charging a new one, with no round trip
at all; an attempt that fails uses it up, as a charged one would. Every attempt checked still holds a hit that Redis
counts, so concurrent guesses across all processes still stop at the limit; what changes is that a busy client app
makes no round trip for it (issue 13: the round trip was a third of a warm introspection's CPU), and that a process
holding kept hits goes on checking attempts (up to that many) after guesses elsewhere have filled the window.

Without Redis, and whenever Redis fails, the charge is counted in this process's exact windows
(app.security.rate_windows.LocalWindows), as every other limit is.
"""

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage

from app.security.rate_windows import LocalWindows, seconds_until

log = logging.getLogger(__name__)

# A hit is given back only while its window has at least this long left (a tenth of shorter windows): the round trip
# carrying it must reach Redis before the window ends.
GIVE_BACK_MARGIN_SECONDS = 1.0
# At most this many counters' owed hits ride on one charge; the rest wait for the next.
MAX_GIVEN_BACK_PER_CHARGE = 32

# KEYS: the counters given back to, then the counters charged. ARGV[1]: how many are given back to; then each
# one's hits owed; then each charged counter's window in seconds. A give-back never takes a counter below zero (nor
# creates one); a charge opens a window with its first hit and never extends it. Answers each charged counter's
# count and the milliseconds its window has left.
CHARGE_SCRIPT = """
local owed = tonumber(ARGV[1])
for i = 1, owed do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  local back = math.min(count, tonumber(ARGV[1 + i]))
  if back > 0 then
    redis.call('DECRBY', KEYS[i], back)
  end
end
local answer = {}
for i = owed + 1, #KEYS do
  local count = redis.call('INCR', KEYS[i])
  local left = redis.call('PTTL', KEYS[i])
  if left < 0 then
    redis.call('EXPIRE', KEYS[i], ARGV[1 + i])
    left = tonumber(ARGV[1 + i]) * 1000
  end
  answer[#answer + 1] = count
  answer[#answer + 1] = left
end
return answer
"""


# The hits a process keeps for a counter: at most this fraction of the window's limit.
KEPT_SHARE = 4


@dataclass
class _Hits:
    """Hits owed to, or kept from, one counter's window."""

    hits: int
    deadline: float  # time.time() after which the window they were charged to may have ended
    window_ends: float = 0.0


class SharedTokenLimit:
    """One process's charges in Redis (`limits`' Redis storage: its connection and key prefix), what it owes and
    what it keeps."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._script = storage.get_connection().register_script(CHARGE_SCRIPT.encode())
        self._owed: dict[str, _Hits] = {}
        self._kept: dict[str, _Hits] = {}
        self._lock = threading.Lock()

    def take_kept(self, windows: list[tuple[RateLimitItem, str]]) -> list[float] | None:
        """One kept hit for every (window, counter), with no round trip: each window's end; or None, taking
        nothing, when a window has none kept in its current window."""
        now = time.time()
        keys = [self._storage.prefixed_key(counter) for _, counter in windows]
        with self._lock:
            kept = [self._kept.get(key) for key in keys]
            usable = [k for k in kept if k is not None and k.hits > 0 and k.deadline > now]
            if len(usable) < len(keys):
                return None
            for k in usable:
                k.hits -= 1
            return [k.window_ends for k in usable]

    def give_back(self, item: RateLimitItem, counter: str, window_ends: float) -> None:
        """A success's hit: kept for this process's next attempts in its window (up to a KEPT_SHARE of the
        window's limit), else owed."""
        key = self._storage.prefixed_key(counter)
        deadline = window_ends - min(GIVE_BACK_MARGIN_SECONDS, item.get_expiry() / 10)
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept.deadline <= time.time():  # none kept, or in a window that may have ended
                kept = self._kept[key] = _Hits(0, deadline, window_ends)
            if kept.hits < item.amount // KEPT_SHARE and deadline >= kept.deadline - GIVE_BACK_MARGIN_SECONDS:
                kept.hits += 1
                return
        self.owe(item, counter, window_ends)

    def charge(self, windows: list[tuple[RateLimitItem, str]]) -> list[tuple[int, float]]:
        """Charge one hit to each (window, counter), giving back what is owed, in one round trip: each counter's
        count and the time.time() its window ends at the latest (measured from before the round trip). Raises what
        the storage raises; what was to be given back is then dropped (it may have been), never owed twice."""
        started = time.time()
        given = self._take(started)
        keys = [key for key, _ in given] + [self._storage.prefixed_key(counter) for _, counter in windows]
        args = [len(given), *(hits for _, hits in given), *(item.get_expiry() for item, _ in windows)]
        answer = self._script(keys=keys, args=args)
        return [(int(answer[2 * i]), started + int(answer[2 * i + 1]) / 1000) for i in range(len(windows))]

    def owe(self, item: RateLimitItem, counter: str, window_ends: float) -> None:
        """A hit to give back to counter's window (ending at window_ends), with the next charge."""
        key = self._storage.prefixed_key(counter)
        deadline = window_ends - min(GIVE_BACK_MARGIN_SECONDS, item.get_expiry() / 10)
        with self._lock:
            owed = self._owed.get(key)
            if owed is None or owed.deadline <= time.time():  # none owed, or to a window that may have ended
                self._owed[key] = _Hits(1, deadline)
            else:  # the same window: the earlier end stands for both
                owed.hits, owed.deadline = owed.hits + 1, min(owed.deadline, deadline)

    def _take(self, now: float) -> list[tuple[str, int]]:
        with self._lock:
            for key in [key for key, owed in self._owed.items() if owed.deadline <= now]:
                del self._owed[key]  # its window may have ended: never credit the next one
            taken = list(self._owed.items())[:MAX_GIVEN_BACK_PER_CHARGE]
            for key, _ in taken:
                del self._owed[key]
        return [(key, owed.hits) for key, owed in taken]


@dataclass(frozen=True)
class _Hit:
    wait: int | None  # None: its window allows it
    give_back: Callable[[], None]


@dataclass(frozen=True)
class Attempt:
    """One charged attempt: None or the seconds to wait, and how to give its hits back."""

    wait: int | None
    hits: tuple[_Hit, ...] = ()

    def give_back(self) -> None:
        for hit in self.hits:
            hit.give_back()


EXTENSION_KEY = "gatehouse.token_limit"


def charge(limiters, limit: str, scope: str, key: str) -> Attempt:
    """Charge one hit to every window of limit ("20 per minute;100 per hour") for key, in the shared storage of
    limiters (app.security.ratelimit.RateLimiters) in one round trip or, without it or when it fails, in this
    process; a refusal gives back what the allowing windows were charged and waits for the longest refusing one
    (RFC 9110 §10.2.3: sooner, the retry would be refused again)."""
    prefix = current_app.config["RATELIMIT_KEY_PREFIX"]
    windows = [(item, item.key_for(prefix, scope, key)) for item in _parsed(limit)]
    shared = _shared(limiters.shared)
    if shared is not None:
        kept = shared.take_kept(windows)
        if kept is not None:
            return Attempt(None, tuple(_Hit(None, functools.partial(shared.give_back, item, counter, ends))
                                       for (item, counter), ends in zip(windows, kept, strict=True)))  # fmt: skip
        try:
            counts = shared.charge(windows)
        except Exception as exc:  # any storage client error: keep limiting, in this process
            log.debug("rate-limit storage failed (%s): counting in this process", type(exc).__name__)
        else:
            now = time.time()
            return _attempt([_Hit(None if count <= item.amount else seconds_until(ends, now),
                                  functools.partial(shared.give_back, item, counter, ends))
                             for (item, counter), (count, ends) in zip(windows, counts, strict=True)])  # fmt: skip
    local: LocalWindows = limiters.local
    return _attempt([_Hit(local.hit(item, counter), functools.partial(local.give_back, counter))
                     for item, counter in windows])  # fmt: skip


def _shared(strategy) -> SharedTokenLimit | None:
    """This app's charges on its rate limits' shared storage (a `limits` strategy on Redis), made once."""
    if strategy is None or not isinstance(strategy.storage, RedisStorage):
        return None
    shared = current_app.extensions.get(EXTENSION_KEY)
    if shared is None:
        shared = current_app.extensions.setdefault(EXTENSION_KEY, SharedTokenLimit(strategy.storage))
    return shared


def _attempt(hits: list[_Hit]) -> Attempt:
    waits = [hit.wait for hit in hits if hit.wait is not None]
    if not waits:
        return Attempt(None, tuple(hits))
    for hit in hits:
        if hit.wait is None:  # a refused hit uses up no other window
            hit.give_back()
    return Attempt(max(waits))


@functools.lru_cache(maxsize=32)
def _parsed(limit: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limit))
