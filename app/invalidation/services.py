"""Invalidate cache entries durably (DESIGN §1): recorded in the revoking transaction, written to the cache after
commit, and replayed from the outbox by any instance or the worker until the cache has them."""

import logging
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from app.cache import Cache, Invalidation, after_commit, cache
from app.clock import now
from app.extensions import db
from app.invalidation.models import CacheInvalidation

log = logging.getLogger("gatehouse.invalidation")

REPLAY_BATCH_SIZE = 500


def invalidate(changes: Sequence[Invalidation]) -> None:
    """Call inside the transaction that makes these entries wrong. A shared cache (Redis) also gets them as
    outbox rows of that transaction, so a fault after commit, or a process killed right after it, loses nothing."""
    if not changes:
        return
    store = cache()
    ids = CacheInvalidation.record(list(changes), now()) if store.shared else []
    after_commit(db.session(), lambda: _deliver(store, changes, ids))


def _deliver(store: Cache, changes: Sequence[Invalidation], ids: list[int]) -> None:
    if not store.invalidate(changes):
        log.warning("%d cache invalidation(s) left in the outbox until the cache answers again", len(changes))
        store.settle_after_fault()  # the revocation is reported done only once no near cache can still be trusted
        return
    if ids:
        try:
            CacheInvalidation.remove(ids)
        except SQLAlchemyError as exc:  # delivered anyway; a later replay rewrites them (harmless) and deletes them
            log.warning("delivered cache invalidations not yet removed from the outbox (%s)", type(exc).__name__)


def replay_pending(store: Cache) -> bool:
    """Write every undelivered change to the cache, oldest first, removing each batch once the cache has it (a late
    replay is harmless: a marker never replaces a tombstone, and a replayed marker only sends readers to the database).
    True when the outbox is empty, False when the cache did not take them (they stay for the next try)."""
    while True:
        batch = CacheInvalidation.pending(REPLAY_BATCH_SIZE)
        if batch and not store.invalidate([change for _, change in batch]):
            return False
        if batch:
            CacheInvalidation.remove([row_id for row_id, _ in batch])
        if len(batch) < REPLAY_BATCH_SIZE:
            return True


def replay_before_trust(store: Cache) -> bool:
    """The shared cache's trust check: with the outbox unreadable, the cache is not trusted (ask the database)."""
    try:
        return replay_pending(store)
    except SQLAlchemyError as exc:
        log.warning("cache invalidation outbox unreadable (%s): the cache is not trusted", type(exc).__name__)
        return False
