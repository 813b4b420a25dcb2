"""Time, injected: the real clock, and a manual one that moves only when told to."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

from contract.times import format_time, parse_time, utc

__all__ = ["Clock", "ManualClock", "RealClock", "format_time", "parse_time", "utc"]


class Clock(Protocol):
    """Where every part of the shim reads the time."""

    manual: bool

    def now(self) -> datetime:
        """The current moment, aware, in UTC."""


class RealClock:
    """The system's time."""

    manual = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until set; the service persists its value so a restart keeps the timeline."""

    manual = True

    def __init__(self, start: datetime | None = None) -> None:
        # Without an explicit start the clock begins at the real time, unless resume() finds it a
        # saved time: a restarted manual-clock shim keeps its timeline.
        self.explicit = start is not None
        self._now = utc(start) if start else datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def resume(self, saved: datetime) -> None:
        """Continue from a saved time: taken as is unless this clock was given its own start."""
        with self._lock:
            self._now = max(self._now, utc(saved)) if self.explicit else utc(saved)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        """Move to `moment`; a manual clock never goes back."""
        with self._lock:
            self._now = max(self._now, utc(moment))
