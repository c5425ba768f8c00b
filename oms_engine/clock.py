"""Time as the OMS sees it: the wall clock, or a simulated one for the demo and tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    # Stored naive, always UTC: SQLite has no time zones and PostgreSQL
    # columns are "timestamp without time zone".
    return datetime.now(UTC).replace(tzinfo=None)


class Clock:
    def now(self) -> datetime:
        return utcnow()


class SimulatedClock(Clock):
    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        if when > self._now:
            self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now += delta
