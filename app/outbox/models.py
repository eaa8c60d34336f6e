"""The columns and queries every outbox table shares."""

from datetime import datetime
from typing import Self

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.types import UTCDateTime


class OutboxRow:
    """Mixed into an outbox model: when it is due, how often it was tried, and how it ended."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(255))

    @classmethod
    def claim_next_due(cls, now: datetime) -> Self | None:
        """The oldest row still pending and due, locked so that several workers never send it twice."""
        query = (
            select(cls)
            .where(cls.delivered_at.is_(None), cls.failed_at.is_(None), cls.next_attempt_at <= now)
            .order_by(cls.id)
            .limit(1)
        )
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return db.session.scalars(query).first()

    def settled(self) -> None:
        """Called once the row is delivered or given up: a model drops what it no longer needs to keep."""
