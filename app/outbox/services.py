"""The worker's loop over one outbox: claim a due row, attempt it, record the outcome, commit; failures back off."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from app.extensions import db
from app.outbox.models import OutboxRow

log = logging.getLogger("gatehouse.outbox")
Row = TypeVar("Row", bound=OutboxRow)


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: error None means delivered; permanent means retrying cannot help."""

    status: int | None = None
    error: str | None = None
    permanent: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    max_backoff_seconds: int

    def backoff(self, attempts: int) -> timedelta:
        """1 s, 2 s, 4 s … after the 1st, 2nd, 3rd failure, capped."""
        return timedelta(seconds=min(2 ** (attempts - 1), self.max_backoff_seconds))


def deliver_due(
    model: type[Row], attempt: Callable[[Row, datetime], Outcome], policy: RetryPolicy, now: datetime, limit: int
) -> int:
    """Attempt each due row once, one short transaction apiece (a slow receiver holds no other row's lock).
    Returns how many were delivered."""
    delivered = 0
    for _ in range(limit):
        row = model.claim_next_due(now)
        if row is None:
            break
        delivered += record(row, attempt(row, now), policy, now)
        db.session.commit()
    return delivered


def record(row: OutboxRow, outcome: Outcome, policy: RetryPolicy, now: datetime) -> int:
    row.attempts += 1
    row.last_status = outcome.status
    if outcome.error is None:
        row.delivered_at = now
        row.settled()
        return 1
    row.last_error = outcome.error[:255]
    if outcome.permanent or row.attempts >= policy.max_attempts:
        row.failed_at = now
        row.settled()
        log.warning("%s %s failed after %d attempts: %s", type(row).__name__, row.id, row.attempts, row.last_error)
    else:
        row.next_attempt_at = now + policy.backoff(row.attempts)
    return 0
