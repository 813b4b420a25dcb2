"""What the service's jobs share: store, driver, clock, the driver pool, the locks and the replica's id."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from shim.clock import Clock, ManualClock, parse_time, utc
from shim.drivers.base import Driver
from shim.store import Store, leases
from shim.store.models import Setting

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MANUAL_CLOCK_SETTING = "manual_clock_now"


class Context:
    """One store, one driver and one clock, and the state the jobs coordinate through."""

    def __init__(
        self,
        store: Store,
        driver: Driver,
        clock: Clock,
        *,
        source: Any,
        batch_size: int,
        driver_workers: int,
        poll_interval: float,
        snapshot_delay: tuple[str, float] | None,
    ) -> None:
        self.store = store
        self.driver = driver
        self.clock = clock
        # What events are emitted from (shim.events): the Service, which listeners subscribe to.
        self.source = source
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.snapshot_delay = snapshot_delay
        self.pool = ThreadPoolExecutor(max_workers=driver_workers, thread_name_prefix="driver")
        # Serialises the work that touches snapshots and volumes inside this process (scheduler batches,
        # API changes of backups and clusters); the database's constraints guard across processes.
        self.work_lock = threading.RLock()
        # Held by a manual-clock advance from start to end, so the scheduler thread does not race it.
        self.advance_lock = threading.Lock()
        # Held by the one advance this process runs; a second one is refused rather than queued.
        self.advancing = threading.Lock()
        # Set when the process is asked to stop (SIGTERM): a clock advance ends at its next step.
        self.stopping = threading.Event()
        self.closed = False
        # Replicas on one database: this process's id (shim.store.leases), stamped on the operations it
        # runs; another live replica leaves them alone, and adopts them once this one's lease expires.
        self.replica_id: str | None = None
        self.lease_seconds = leases.LEASE_SECONDS
        self.next_adoption = 0.0

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.shutdown(wait=True)

    def now(self) -> datetime:
        if isinstance(self.clock, ManualClock):
            # Shared by every replica: an advance through any of them moves the time of all.
            with self.store.statements() as conn:
                saved = conn.execute(
                    select(Setting.value).where(Setting.key == MANUAL_CLOCK_SETTING)
                ).scalar_one_or_none()
            if saved is not None:
                self.clock.set(parse_time(saved))
        return self.clock.now()

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
        """Run a driver call over many items at once (bounded by the pool); failures come back as values."""

        def guarded(item: T) -> R | Exception:
            try:
                return fn(item)
            except Exception as error:
                return error

        if len(items) == 1:
            return [guarded(items[0])]
        return list(self.pool.map(guarded, items))

    def load_manual_clock(self) -> None:
        """A manual clock resumes where it stood before a restart (its now is kept in the database)."""
        if not isinstance(self.clock, ManualClock):
            return
        with self.store.write() as session:
            setting = session.get(Setting, MANUAL_CLOCK_SETTING)
            if setting is not None:
                self.clock.resume(parse_time(setting.value))
            self.save_clock(session)

    def save_clock(self, session: Session) -> None:
        if not isinstance(self.clock, ManualClock):
            return
        setting = session.get(Setting, MANUAL_CLOCK_SETTING, with_for_update=True)
        if setting is None:
            session.add(Setting(key=MANUAL_CLOCK_SETTING, value=utc(self.clock.now()).isoformat()))
        else:
            # Another replica may have moved it further meanwhile: the shared clock never goes back.
            self.clock.set(parse_time(setting.value))
            setting.value = utc(self.clock.now()).isoformat()

    def forget_operations(self, tokens: Sequence[str | None]) -> None:
        """Tell the driver these operations' results are in the database (drivers that keep records of
        finished operations, as the local one does, delete them); a failure here only leaves a record."""
        forget = getattr(self.driver, "forget_operation", None)
        if forget is None:
            return
        for token in tokens:
            if not token:
                continue
            try:
                forget(token)
            except (OSError, ValueError) as error:
                log.warning("could not forget operation %s: %s", token, error)


class Job:
    """One job of the service; every job works through the one context they share."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
