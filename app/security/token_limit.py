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

Better still, the hit of an attempt that succeeded (200) is kept (up to a quarter of the window's limit per process):
Redis goes on counting it, and this process's next attempt in the same window takes it instead of charging a new
one, with no round trip at all; an attempt that fails uses it up, as a charged one would. Every attempt checked
still holds a hit that Redis counts, so concurrent guesses across all processes still stop at the limit; what
changes is that a busy client app makes no round trip for it (issue 13: the round trip was a third of a warm
introspection's CPU), and that a process holding kept hits goes on checking attempts (up to that many) after guesses
elsewhere have filled the window. Only a client that knows its secret gets hits kept, so should Redis lose its
counters (a restart without persistence), what the processes keep lets through at most that client's own successes.

A process holds what it owes and keeps for at most MAX_COUNTERS counters (attempts under many client ids at once
fill them): past that, a hit given back is dropped and stays counted until its window ends, erring towards limiting.

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


# The hits a process keeps for a counter: at most the window's limit divided by this.
KEPT_SHARE = 4
# The counters a process owes or keeps hits for, each; and how often it looks for ended windows to make room.
MAX_COUNTERS = 1024
PRUNE_INTERVAL_SECONDS = 1.0


@dataclass
class _Hits:
    """Hits owed to, or kept from, one counter's window."""

    hits: int
    deadline: float  # time.time() after which the window they were charged to may have ended
    window_ends: float


class SharedTokenLimit:
    """One process's charges in Redis (`limits`' Redis storage: its connection and key prefix), what it owes and
    what it keeps."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._script = storage.get_connection().register_script(CHARGE_SCRIPT.encode())
        self._owed: dict[str, _Hits] = {}
        self._kept: dict[str, _Hits] = {}
        self._next_prune = 0.0
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

    def give_back(self, item: RateLimitItem, counter: str, window_ends: float, keep: bool) -> None:
        """A hit given back to counter's window (ending at window_ends): kept for this process's next attempts in
        that window when keep (a success) and the window allows KEPT_SHARE, else owed to Redis with the next
        charge. Dropped when its window may have ended: the next window never starts with credit."""
        now = time.time()
        deadline = window_ends - min(GIVE_BACK_MARGIN_SECONDS, item.get_expiry() / 10)
        if deadline <= now:
            return
        key = self._storage.prefixed_key(counter)
        with self._lock:
            most_kept = item.amount // KEPT_SHARE
            if keep and most_kept > 0 and self._add(self._kept, key, deadline, window_ends, now, most_kept):
                return
            self._add(self._owed, key, deadline, window_ends, now, None)

    def _add(self, held: dict[str, _Hits], key: str, deadline: float, window_ends: float, now: float,
             most: int | None) -> bool:  # fmt: skip
        """One hit more held for key's current window (under the lock); False when it may hold no more."""
        hits = held.get(key)
        if hits is None or hits.deadline <= now:  # none held, or for a window that may have ended
            if hits is None and len(held) >= MAX_COUNTERS and not self._made_room(held, now):
                return False
            hits = held[key] = _Hits(0, deadline, window_ends)
        if most is not None and hits.hits >= most:
            return False
        hits.hits, hits.deadline = hits.hits + 1, min(hits.deadline, deadline)
        return True

    def _made_room(self, held: dict[str, _Hits], now: float) -> bool:
        """Drop what is held for windows that may have ended, at most once a PRUNE_INTERVAL_SECONDS."""
        if now < self._next_prune:
            return False
        self._next_prune = now + PRUNE_INTERVAL_SECONDS
        for key in [key for key, hits in held.items() if hits.deadline <= now]:
            del held[key]
        return len(held) < MAX_COUNTERS

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
    give_back: Callable[[bool], None]  # keep: the attempt succeeded


@dataclass(frozen=True)
class Attempt:
    """One charged attempt: None or the seconds to wait, and how to give its hits back."""

    wait: int | None
    hits: tuple[_Hit, ...] = ()

    def give_back(self, *, succeeded: bool) -> None:
        """The attempt did not fail client authentication; succeeded: it was answered 200 (its hits may be kept)."""
        for hit in self.hits:
            hit.give_back(succeeded)


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
    return _attempt([_Hit(local.hit(item, counter), functools.partial(_give_back_here, local, counter))
                     for item, counter in windows])  # fmt: skip


def _give_back_here(local: LocalWindows, counter: str, _succeeded: bool) -> None:
    local.give_back(counter)


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
            hit.give_back(False)
    return Attempt(max(waits))


@functools.lru_cache(maxsize=32)
def _parsed(limit: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limit))
