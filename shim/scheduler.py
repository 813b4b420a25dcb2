"""The scheduler thread of `serve`: ticks the service's schedule (R7) every second or so."""

from __future__ import annotations

import logging
import threading

from shim.service import Service

log = logging.getLogger(__name__)


class Scheduler:
    """Calls Service.tick() every `interval` seconds until stopped; a failing tick is logged, not fatal."""

    def __init__(self, service: Service, interval: float = 1.0) -> None:
        self.service = service
        self.interval = interval
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
        while not self._stop.wait(self.interval):
            try:
                started = self.service.tick()
                if started:
                    log.info("scheduler: %d snapshot(s) started", started)
            except Exception:
                log.exception("scheduler: tick failed; trying again at the next one")
