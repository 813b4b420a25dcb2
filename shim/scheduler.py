"""The scheduler thread of `serve`: ticks the service's schedule (R7) and reconciles storage now and then."""

from __future__ import annotations

import logging
import threading
import time

from shim.service import Service

log = logging.getLogger(__name__)


class Scheduler:
    """Calls Service.tick() every `interval` seconds until stopped; a failing tick is logged, not fatal.

    Every `reconcile_interval` seconds (0: never) it also calls Service.reconcile_storage(), so that
    snapshots deleted or left behind in storage while the shim runs are found without a restart.
    """

    def __init__(self, service: Service, interval: float = 1.0, reconcile_interval: float = 0.0) -> None:
        self.service = service
        self.interval = interval
        self.reconcile_interval = reconcile_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to stop and wait for the tick in progress to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        # The start's reconciliation has just run (create_app): the first periodic one is an interval later.
        next_reconcile = time.monotonic() + self.reconcile_interval
        while not self._stop.wait(self.interval):
            try:
                started = self.service.tick()
                if started:
                    log.info("scheduler: %d snapshot(s) started", started)
            except Exception:
                log.exception("scheduler: tick failed; trying again at the next one")
            if self.reconcile_interval > 0 and time.monotonic() >= next_reconcile and not self._stop.is_set():
                try:
                    self.service.reconcile_storage()
                except Exception:
                    log.exception("scheduler: reconciliation failed; trying again at the next one")
                next_reconcile = time.monotonic() + self.reconcile_interval
