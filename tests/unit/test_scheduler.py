"""The scheduler thread: it ticks, and every reconcile interval it reconciles storage, failures or not."""

from __future__ import annotations

import threading

from shim.scheduler import Scheduler


class CountingService:
    """Stands in for Service: counts ticks and reconciliations; the first reconciliation fails."""

    def __init__(self, wanted_reconciliations: int = 0, wanted_ticks: int = 0) -> None:
        self.ticks = 0
        self.reconciliations = 0
        self.wanted_reconciliations = wanted_reconciliations
        self.wanted_ticks = wanted_ticks
        self.done = threading.Event()

    def tick(self) -> int:
        self.ticks += 1
        if self.wanted_ticks and self.ticks >= self.wanted_ticks:
            self.done.set()
        return 0

    def reconcile_storage(self) -> None:
        self.reconciliations += 1
        if self.reconciliations >= self.wanted_reconciliations > 0:
            self.done.set()
        if self.reconciliations == 1:
            raise RuntimeError("Azure is unreachable right now")


def test_storage_is_reconciled_every_interval_between_ticks_and_a_failure_does_not_stop_it() -> None:
    service = CountingService(wanted_reconciliations=3)
    scheduler = Scheduler(service, interval=0.001, reconcile_interval=0.02)  # type: ignore[arg-type]
    scheduler.start()
    try:
        assert service.done.wait(10), "three reconciliations did not happen"
        assert scheduler.running
    finally:
        scheduler.stop()
    assert service.reconciliations >= 3
    assert service.ticks > service.reconciliations  # it reconciles between ticks, not at every one


def test_a_reconcile_interval_of_zero_never_reconciles_while_serving() -> None:
    service = CountingService(wanted_ticks=50)
    scheduler = Scheduler(service, interval=0.001, reconcile_interval=0)  # type: ignore[arg-type]
    scheduler.start()
    try:
        assert service.done.wait(10)
    finally:
        scheduler.stop()
    assert service.reconciliations == 0
