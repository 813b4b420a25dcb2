"""The one way the provider waits for a long operation: poll with a growing pause until done or a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

# What a snapshot and a restore job end in; anything else ("queued", "inProgress") is still running.
FINISHED = ("completed", "failed")


class Getter(Protocol):
    def get(self, path: str) -> Any: ...


def wait_for(check: Callable[[], Any], *, deadline: float, first: float = 0.05, longest: float = 5.0) -> Any:
    """Poll `check` until it returns something other than None, or raise TimeoutError at `deadline`."""
    delay = first
    while True:
        result = check()
        if result is not None:
            return result
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError
        time.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 2, longest)


def until_finished(client: Getter, path: str, data: dict[str, Any], *, deadline: float) -> dict[str, Any]:
    """The answer of a started operation (a snapshot, a restore job) once its status is FINISHED.

    `data` is the answer that started it: returned as it is if the operation already finished, else
    `path` is read again, first after 20 ms (a local snapshot often takes no longer), until it has.
    """
    if data.get("status") in FINISHED:
        return data

    def finished() -> dict[str, Any] | None:
        current = client.get(path)
        return current if current.get("status") in FINISHED else None

    result: dict[str, Any] = wait_for(finished, deadline=deadline, first=0.02)
    return result
