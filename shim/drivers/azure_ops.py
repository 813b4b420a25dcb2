"""Long-running operations as generators stepped on a bounded thread pool, so waiting holds no thread."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .base import OperationState, OperationStatus

log = logging.getLogger(__name__)

# An operation's steps: it does a little blocking work (an HTTP request or two), then yields the
# seconds to wait before its next step, and finally returns its result.
Steps = Generator[float, None, dict[str, object]]

# How many finished operations stay in memory for `status`; older ones are derived again from storage.
FINISHED_KEPT = 10_000


@dataclass
class _Operation:
    steps: Steps
    state: OperationState = "queued"
    result: dict[str, object] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None

    def snapshot(self) -> OperationStatus:
        return OperationStatus(self.state, dict(self.result), self.error_code, self.error_message)


class OperationRunner:
    """Runs many operations at once on `max_workers` threads.

    A pool thread runs one step of one operation at a time; between steps an operation waits on a
    single timer thread, not on a pool thread. So a hundred operations that each wait a second for
    Azure are all in flight at once, while the number of threads stays bounded. Thread-safe.
    """

    def __init__(
        self, max_workers: int, describe_error: Callable[[BaseException], tuple[str, str]], name: str = "ops"
    ) -> None:
        self._describe_error = describe_error
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._timer_wakeup = threading.Condition(self._lock)
        self._timers: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._operations: dict[str, _Operation] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._closed = False
        self._clock = time.monotonic
        self._timer_thread = threading.Thread(target=self._run_timers, name=f"{name}-timer", daemon=True)
        self._timer_thread.start()

    def start(self, token: str, steps: Steps, *, first_step_here: bool = False) -> bool:
        """Start an operation under `token`; False (and `steps` discarded) if that token is still running.

        A finished operation's token may start again (a new attempt replaces the old outcome).

        With `first_step_here` the first step runs in the caller's thread before this returns, so that
        what it sends (the request creating a resource) has been answered by then: a token its caller
        records then always names work that storage knows of, even if the process dies right after.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the operation runner is closed")
            known = self._operations.get(token)
            if known is not None and known.state not in ("succeeded", "failed"):
                steps.close()
                return False
            self._finished.pop(token, None)
            self._operations[token] = _Operation(steps)
        if first_step_here:
            self._step(token)
        else:
            self._pool.submit(self._step, token)
        return True

    def status(self, token: str) -> OperationStatus | None:
        """The operation's status, or None if this runner does not know the token."""
        with self._lock:
            operation = self._operations.get(token)
            return operation.snapshot() if operation is not None else None

    def close(self) -> None:
        """Stop stepping; operations still in flight are abandoned (their state stays in storage)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._timer_wakeup.notify_all()
        self._timer_thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for operation in self._operations.values():
                if operation.state not in ("succeeded", "failed"):
                    operation.steps.close()

    def _step(self, token: str) -> None:
        with self._lock:
            operation = self._operations[token]
            if self._closed:
                return
            operation.state = "inProgress"
        try:
            delay = next(operation.steps)
        except StopIteration as done:
            self._finish(token, operation, result=dict(done.value or {}))
        except Exception as exc:  # every failure of an operation is reported; none escapes the pool
            code, message = self._describe_error(exc)
            log.info("operation %s failed: %s: %s", token, code, message)
            self._finish(token, operation, error=(code, message))
        else:
            self._schedule(token, delay)

    def _finish(
        self,
        token: str,
        operation: _Operation,
        result: dict[str, object] | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        with self._lock:
            if error is None:
                operation.state, operation.result = "succeeded", result or {}
            else:
                operation.state = "failed"
                operation.error_code, operation.error_message = error
            self._finished[token] = None
            while len(self._finished) > FINISHED_KEPT:
                old, _ = self._finished.popitem(last=False)
                self._operations.pop(old, None)

    def _schedule(self, token: str, delay: float) -> None:
        with self._lock:
            if self._closed:
                return
            heapq.heappush(self._timers, (self._clock() + max(0.0, delay), next(self._sequence), token))
            self._timer_wakeup.notify()

    def _run_timers(self) -> None:
        with self._lock:
            while not self._closed:
                now = self._clock()
                while self._timers and self._timers[0][0] <= now:
                    _, _, token = heapq.heappop(self._timers)
                    self._pool.submit(self._step, token)
                timeout = self._timers[0][0] - now if self._timers else None
                self._timer_wakeup.wait(timeout)
