"""The cache-invalidation outbox (DESIGN §1): written with the revocation, deleted once the cache has it."""

from datetime import datetime

from sqlalchemy import LargeBinary, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from app.cache import Invalidation
from app.extensions import Model, db
from app.types import UTCDateTime


class CacheInvalidation(Model):
    """One change a shared cache must receive before it may be trusted again: a tombstone (value) or a stale marker
    (NULL)."""

    __tablename__ = "cache_invalidations"

    id: Mapped[int] = mapped_column(primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(255))
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    ttl_seconds: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @classmethod
    def record(cls, changes: list[Invalidation], at: datetime) -> list[int]:
        """Add the changes to the current (revoking) transaction; their ids, to delete them once delivered."""
        rows = [cls(cache_key=c.key, value=c.value, ttl_seconds=c.ttl_seconds, created_at=at) for c in changes]
        db.session.add_all(rows)
        db.session.flush()
        return [row.id for row in rows]

    # The two below run outside the request's transaction (after its commit, in the cache's trust check, in the
    # worker) on a connection of their own, so they never join, or wait for, a request's unit of work.

    @classmethod
    def pending(cls, limit: int) -> list[tuple[int, Invalidation]]:
        """The oldest undelivered changes, by id. The order they reach the cache in is not guaranteed: a replay can
        land after a newer change was written directly, or two replays can interleave. What holds whatever the order
        is in the cache (app.cache): a tombstone is final and a stale marker never replaces it, and neither leaves a
        gap a stale reader's add could fill."""
        query = select(cls.id, cls.cache_key, cls.value, cls.ttl_seconds).order_by(cls.id).limit(limit)
        with db.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [(row.id, Invalidation(row.cache_key, row.value, row.ttl_seconds)) for row in rows]

    @classmethod
    def remove(cls, ids: list[int]) -> None:
        with db.engine.begin() as connection:
            connection.execute(delete(cls).where(cls.id.in_(ids)))
