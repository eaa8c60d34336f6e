"""A per-process near cache in front of Redis, whose entries Redis invalidates (issue 13): a warm session check or
grant check makes no round trip at all, and the revocation promise stands: once a revocation has returned, no
process answers from an entry it made wrong.

How, in Redis (keys under the cache's prefix):

- Every invalidation (app.cache.RedisCache.invalidate) is one script that writes the tombstones and stale markers,
  numbers the change (`near:seq`, within an epoch, `near:epoch`, which a restarted or emptied Redis starts anew) and
  publishes the changed keys with that position on `near:invalidations`.
- Each process that reads through a near cache is a member: a thread of its own subscribes to the channel, drops
  what each message names, and acknowledges the position it has applied in the `near:members` hash, beside the end
  of its lease (LEASE_SECONDS, by Redis's clock), which it renews every fifth of a lease. A renewal also reads Redis's
  position: whatever this process has not applied by then (a message lost while it reconnected, or still on its way)
  empties its near cache. Only a renewal makes the near cache trusted, for 80 % of the lease from the moment the
  renewal was sent; a new subscription starts with nothing applied and nothing kept.
- The invalidating process drops the keys from its own near cache at once, then waits until every member has
  acknowledged the position or its lease has ended (then its own trust ended earlier): a few milliseconds, at most a
  lease when a member cannot reach Redis. When Redis cannot take the invalidation at all, app.invalidation.services
  waits out a lease instead (settle_after_fault), so that no near cache trusted before the fault is still trusted
  when the revocation returns; the outbox then delivers it as before. Redis must not evict keys without a lifetime
  (its default, noeviction, or a volatile-* policy): the members hash has none.

A read that misses the near cache reads Redis (GET with the entry's remaining lifetime, one round trip) and keeps the
answer only if no invalidation was applied in between (a generation number), so a reader never puts back what an
invalidation removed. Tombstones and answers are kept; stale markers and misses never are.
"""

import atexit
import contextlib
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Sequence

import redis

log = logging.getLogger(__name__)

LEASE_SECONDS = 1.0
LISTENER_NAME = "gatehouse-near-cache"
RENEWALS_PER_LEASE = 5
TRUSTED_SHARE_OF_LEASE = 0.8  # margin for clock rates and scheduling between the renewal and Redis's expiry
CATCH_UP_SECONDS = 0.05  # after a renewal, how long to wait for the messages it says are on their way
RECONNECT_PAUSE_SECONDS = 0.1
MAX_ENTRIES = 100_000
FIRST_POLL_SECONDS, LAST_POLL_SECONDS = 0.0005, 0.01  # how often an invalidation looks for acknowledgements
GIVE_UP_AFTER_LEASES = 10

# KEYS: the sequence, the epoch, then the changed entries; ARGV: the channel, the stale marker, its lifetime, the
# changed keys as named in this process (newline-separated), a new epoch in case Redis has none (it restarted or was
# emptied: numbers start again), then for each entry: "1" and a value and lifetime, or "0". Answers {epoch, number,
# 1 when the epoch is new}.
INVALIDATE = """
local argument = 6
for i = 3, #KEYS do
  if ARGV[argument] == '1' then
    redis.call('SET', KEYS[i], ARGV[argument + 1], 'EX', ARGV[argument + 2])
    argument = argument + 3
  else
    local current = redis.call('GET', KEYS[i])
    if not (current and string.byte(current, 1) == 0) then
      redis.call('SET', KEYS[i], ARGV[2], 'EX', ARGV[3])
    end
    argument = argument + 1
  end
end
local epoch, new = redis.call('GET', KEYS[2]), 0
if not epoch then
  epoch, new = ARGV[5], 1
  redis.call('SET', KEYS[2], epoch)
  redis.call('SET', KEYS[1], 0)
end
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], epoch .. ':' .. seq .. '\\n' .. ARGV[4])
return {epoch, seq, new}
"""
# The members: one hash, member id -> "epoch:applied:lease end" (ms, Redis's clock), without expiry of its own so
# that a Redis evicting keys with a lifetime (volatile-* policies) never drops a lease still running.
# KEYS: the members, the sequence, the epoch; ARGV: member id, "epoch:applied", lease in ms. Answers {epoch, number}.
RENEW = """
local now = redis.call('TIME')
local ends = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ends)
return {redis.call('GET', KEYS[3]) or '', tonumber(redis.call('GET', KEYS[2]) or '0')}
"""
# KEYS: the members; ARGV: member id, "epoch:applied". Never revives an ended lease, never moves its end.
ACKNOWLEDGE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. string.match(current, ':(%d+)$'))
return 1
"""
# KEYS: the members; ARGV: epoch, number, the asking member (not waited for). Members whose lease has ended are
# forgotten; a member is waited for until it has applied this number of this epoch.
WAITING = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local waiting = {}
local members = redis.call('HGETALL', KEYS[1])
for i = 1, #members, 2 do
  local epoch, applied, ends = string.match(members[i + 1], '^([^:]*):(%d+):(%d+)$')
  if not ends or tonumber(ends) <= now_ms then
    redis.call('HDEL', KEYS[1], members[i])
  elseif members[i] ~= ARGV[3] and (epoch ~= ARGV[1] or tonumber(applied) < tonumber(ARGV[2])) then
    table.insert(waiting, members[i])
  end
end
return waiting
"""


class NearCache:
    """This process's entries, trusted only under a renewed lease (see the module's docstring)."""

    def __init__(self, client: redis.Redis, url: str, prefix: str, lease_seconds: float = LEASE_SECONDS):
        """client: the cache's own (invalidations are published from request threads); the listener gets its own
        connections, named LISTENER_NAME in CLIENT LIST, whose timeout may be longer: its trust is bounded by the
        lease from the moment a renewal is sent, whatever a reply takes."""
        self._client = client
        self._listener_client = redis.Redis.from_url(
            url, socket_timeout=max(lease_seconds, 0.25), socket_connect_timeout=0.25, client_name=LISTENER_NAME
        )
        self._lease = lease_seconds
        self._sequence_key = prefix + "near:seq"
        self._epoch_key = prefix + "near:epoch"
        self._members_key = prefix + "near:members"
        self.channel = prefix + "near:invalidations"
        self._invalidate = client.register_script(INVALIDATE)
        self._waiting = client.register_script(WAITING)
        self._renew = self._listener_client.register_script(RENEW)
        self._acknowledge = self._listener_client.register_script(ACKNOWLEDGE)
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, bytes]] = {}
        self.generation = 0  # moves on every invalidation applied here: a read started before it keeps nothing
        self.epoch = ""  # Redis's current numbering (a new one after Redis restarted or was emptied) ...
        self.known_epochs = False  # whether this process has seen one (so a new one means Redis lost its members)
        self.applied = 0  # ... and the highest invalidation number of it applied here
        self._trusted_until = 0.0  # time.monotonic()
        self.member = ""
        self._pid = 0

    # Request threads.

    def usable(self) -> bool:
        """Trusted under a renewed lease; starts this process's listener on first use (after a fork too)."""
        if self._lease <= 0:
            return False
        if self._pid != os.getpid():
            self._start()
        return time.monotonic() < self._trusted_until

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def keep(self, key: str, value: bytes, ttl_seconds: float, generation: int) -> None:
        """Keep what Redis answered, unless an invalidation was applied since the read began (generation)."""
        with self._lock:
            if generation != self.generation or ttl_seconds <= 0:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl_seconds, value)

    def publish(self, cache_keys: Sequence[str], names: Sequence[str], arguments: Sequence, stale: bytes,
                stale_seconds: int) -> tuple[str, int, bool]:  # fmt: skip
        """Run the invalidation script (one round trip): its epoch and number, and whether the epoch is new. Raises
        what redis-py raises."""
        keys = [self._sequence_key, self._epoch_key, *cache_keys]
        args = [self.channel, stale, stale_seconds, "\n".join(names), secrets.token_hex(8), *arguments]
        epoch, number, new = self._invalidate(keys=keys, args=args)
        return epoch.decode(), int(number), bool(new)

    def drop(self, names: Sequence[str], number: int = 0) -> None:
        """Forget these entries. Only the listener passes the message's number: an invalidation made here is dropped
        at once but counts as applied only when its message arrives, in order, after every earlier one."""
        with self._lock:
            for name in names:
                self._entries.pop(name, None)
            self.generation += 1
            self.applied = max(self.applied, number)

    def await_acknowledgements(self, epoch: str, number: int, new_epoch: bool) -> None:
        """Until every other member has applied invalidation `number` or lost its lease. A member that keeps its lease
        acknowledges at its next renewal at the latest (a renewal reads the number, and empties its copy if it has not
        applied it), so this ends within a renewal of the slowest member, or a lease of one that went silent. A new
        epoch, when this process knew an older one, means Redis restarted or was emptied and forgot its members: a
        whole lease is waited out first (each member renews, and so empties its copy, or stops trusting it). So is one
        when Redis fails meanwhile."""
        started = time.monotonic()
        if new_epoch and self.known_epochs:
            time.sleep(self._lease)
        deadline, pause = started + self._lease * GIVE_UP_AFTER_LEASES, FIRST_POLL_SECONDS
        try:
            while self._waiting(keys=[self._members_key], args=[epoch, number, self.member]):
                if time.monotonic() >= deadline:  # only a member whose renewals stop acknowledging: a defect
                    log.error("near caches did not acknowledge invalidation %d within %d leases", number,
                              GIVE_UP_AFTER_LEASES)  # fmt: skip
                    return
                time.sleep(pause)
                pause = min(pause * 2, LAST_POLL_SECONDS)
        except redis.RedisError as exc:
            log.warning("redis failed while waiting for near caches (%s): waiting out a lease", type(exc).__name__)
            time.sleep(max(0.0, started + self._lease - time.monotonic()))

    def settle_after_fault(self, failing_since: float) -> None:
        """An invalidation Redis did not take: wait until every near cache trusted before the fault has lapsed, a
        lease after the first failed attempt since Redis last took one (time.monotonic()). Those that can reach Redis
        meanwhile go on trusting, until their outbox check replays the invalidation (app.cache)."""
        time.sleep(max(0.0, failing_since + self._lease - time.monotonic()))

    # The listener thread.

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self.member = os.getpid(), secrets.token_hex(8)
            self._entries.clear()
            self._trusted_until, self.generation = 0.0, self.generation + 1
        thread = threading.Thread(target=_listen, args=(weakref.ref(self), self.member), daemon=True,
                                  name="gatehouse-near-cache")  # fmt: skip
        thread.start()
        atexit.register(_leave, weakref.ref(self), self.member)

    def _subscribed(self) -> None:
        """A new subscription: messages published before it are lost to it. Nothing is kept here and nothing counts
        as applied, so no invalidation is acknowledged before the first renewal has read Redis's position."""
        with self._lock:
            self._entries.clear()
            self.generation += 1
            self.epoch, self.applied = "", 0

    def _distrust(self) -> None:
        with self._lock:
            self._trusted_until = 0.0
            self._entries.clear()
            self.generation += 1

    def _reached(self, epoch: str, number: int) -> bool:
        return self.epoch == epoch and self.applied >= number

    def _position(self) -> str:
        return f"{self.epoch}:{self.applied}"

    def _renewal(self, pubsub) -> None:
        """Renew the lease; catch up with Redis's position (or empty the cache); only then trust until the lease's
        end."""
        sent = time.monotonic()
        keys = [self._members_key, self._sequence_key, self._epoch_key]
        raw_epoch, raw_latest = self._renew(keys=keys, args=[self.member, self._position(), int(self._lease * 1000)])
        epoch, latest = raw_epoch.decode(), int(raw_latest)
        if not self._reached(epoch, latest):
            deadline = time.monotonic() + CATCH_UP_SECONDS
            while not self._reached(epoch, latest) and (left := deadline - time.monotonic()) > 0:
                self._apply(pubsub.get_message(ignore_subscribe_messages=True, timeout=left))
            if not self._reached(epoch, latest):
                with self._lock:
                    self._entries.clear()
                    self.generation += 1
                    self.epoch, self.applied = epoch, latest
                    self.known_epochs = self.known_epochs or bool(epoch)
            self._acknowledge_applied()
        self._trusted_until = sent + self._lease * TRUSTED_SHARE_OF_LEASE

    def _apply(self, message) -> bool:
        if not message or message.get("type") != "message":
            return False
        position, _, names = message["data"].decode().partition("\n")
        epoch, _, raw_number = position.partition(":")
        number = int(raw_number)
        with self._lock:
            if epoch != self.epoch:  # a new numbering: its first message, or one was missed
                missed = number != 1
                self.epoch, self.applied = epoch, 0
                self.known_epochs = True
            else:
                missed = number > self.applied + 1
            if missed:  # nothing here can be told apart from what the missed message named
                self._entries.clear()
        self.drop(names.split("\n") if names else [], number)
        return True

    def _acknowledge_applied(self) -> None:
        self._acknowledge(keys=[self._members_key], args=[self.member, self._position()])


def _listen(reference: "weakref.ref[NearCache]", member: str) -> None:
    """The listener thread: alive while its near cache is, in the process that started it. It holds the cache only
    while it works, never while it waits, so a cache nobody uses any more (an app a test built) is collected and its
    thread ends within a renewal."""
    while (near := _alive(reference, member)) is not None:
        pubsub = near._listener_client.pubsub()
        del near
        try:
            pubsub.subscribe(_channel(reference))
            confirmed = pubsub.get_message(timeout=1.0)
            if not confirmed or confirmed.get("type") != "subscribe":
                raise redis.ConnectionError("no subscription confirmed")
            if (near := _alive(reference, member)) is not None:
                near._subscribed()
            del near
            _serve(reference, member, pubsub)
        except Exception as exc:  # any fault: untrusted and empty until a renewal succeeds again
            log.debug("near cache listener: %s", type(exc).__name__)
        finally:
            pubsub.close()
        if (near := _alive(reference, member)) is not None:
            near._distrust()
        del near
        time.sleep(RECONNECT_PAUSE_SECONDS)


def _serve(reference: "weakref.ref[NearCache]", member: str, pubsub) -> None:
    """Subscribed: renew on schedule, apply messages as they come and acknowledge each burst."""
    renew_at = 0.0
    while (near := _alive(reference, member)) is not None:
        now = time.monotonic()
        if now >= renew_at:
            near._renewal(pubsub)
            renew_at = now + near._lease / RENEWALS_PER_LEASE
        del near
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=max(0.0, renew_at - time.monotonic()))
        if message is None or (near := _alive(reference, member)) is None:
            continue
        if near._apply(message):
            while near._apply(pubsub.get_message(ignore_subscribe_messages=True, timeout=0)):
                pass
            near._acknowledge_applied()
        del near


def _leave(reference: "weakref.ref[NearCache]", member: str) -> None:
    """At a clean exit (a gunicorn worker restarting): no invalidation waits for this process's lease to run out."""
    near = _alive(reference, member)
    if near is None:
        return
    near._trusted_until = 0.0
    with contextlib.suppress(redis.RedisError):  # else its lease runs out by itself
        near._listener_client.hdel(near._members_key, member)


def _alive(reference: "weakref.ref[NearCache]", member: str) -> NearCache | None:
    near = reference()
    return near if near is not None and near.member == member else None


def _channel(reference: "weakref.ref[NearCache]") -> str:
    near = reference()
    if near is None:
        raise redis.ConnectionError("near cache gone")
    return near.channel
