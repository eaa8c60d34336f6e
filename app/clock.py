"""The one source of "now": every rule that depends on time asks the app's clock."""

from datetime import UTC, datetime, timedelta

from flask import current_app

CLOCK_EXTENSION_KEY = "gatehouse.clock"


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, benchmarks)."""

    def __init__(self, start: datetime | None = None):
        self._now = (start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)).astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


def now() -> datetime:
    """Return the current app's "now" (aware, UTC)."""
    return current_app.extensions[CLOCK_EXTENSION_KEY].now()
