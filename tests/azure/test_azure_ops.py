"""The operation runner: many operations in flight on few threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from shim.drivers.azure_ops import OperationRunner, Steps
from shim.drivers.base import DriverError


def _describe(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, DriverError):
        return exc.code, exc.message
    return type(exc).__name__, str(exc)


@pytest.fixture
def runner() -> Iterator[OperationRunner]:
    runner = OperationRunner(max_workers=2, describe_error=_describe, name="test-ops")
    yield runner
    runner.close()


def _wait(runner: OperationRunner, token: str) -> None:
    deadline = time.monotonic() + 5
    while not runner.status(token).finished:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_waiting_operations_hold_no_thread(runner: OperationRunner) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def steps(i: int) -> Steps:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        yield 0.2  # "Azure is working on it"
        with lock:
            running -= 1
        return {"n": i}

    tokens = [f"t{i}" for i in range(20)]
    for i, token in enumerate(tokens):
        runner.start(token, steps(i))
    for token in tokens:
        _wait(runner, token)

    assert peak == 20, "all twenty were waiting at once"
    assert [runner.status(t).result for t in tokens] == [{"n": i} for i in range(20)]  # type: ignore[union-attr]
    assert len([t for t in threading.enumerate() if t.name.startswith("test-ops")]) <= 3


def test_an_operation_is_queued_then_in_progress_then_done(runner: OperationRunner) -> None:
    gate = threading.Event()

    def steps() -> Steps:
        gate.wait(5)
        yield 0.0
        return {}

    blockers = [f"b{i}" for i in range(2)]
    for token in blockers:
        runner.start(token, steps())
    runner.start("queued", steps())
    assert runner.status("queued").state == "queued"  # type: ignore[union-attr]
    gate.set()
    _wait(runner, "queued")
    assert runner.status("queued").state == "succeeded"  # type: ignore[union-attr]


def test_a_failing_step_is_reported_with_its_code_and_message(runner: OperationRunner) -> None:
    def steps() -> Steps:
        yield 0.0
        raise DriverError("QuotaExceeded", "no more snapshots")

    runner.start("t", steps())
    _wait(runner, "t")

    status = runner.status("t")
    assert status is not None
    assert (status.state, status.error_code, status.error_message) == (
        "failed",
        "QuotaExceeded",
        "no more snapshots",
    )


def test_a_token_already_running_is_not_started_twice(runner: OperationRunner) -> None:
    calls = []

    def steps(n: int) -> Steps:
        calls.append(n)
        yield 0.05
        return {"n": n}

    assert runner.start("t", steps(1)) is True
    assert runner.start("t", steps(2)) is False
    _wait(runner, "t")
    assert calls == [1]
    assert runner.status("unknown") is None


def test_a_finished_token_starts_again_as_a_new_attempt(runner: OperationRunner) -> None:
    def fails() -> Steps:
        yield 0.0
        raise DriverError("InternalDiskError", "first attempt")

    def succeeds() -> Steps:
        yield 0.0
        return {"attempt": 2}

    runner.start("t", fails())
    _wait(runner, "t")
    assert runner.status("t").state == "failed"  # type: ignore[union-attr]
    assert runner.start("t", succeeds()) is True
    _wait(runner, "t")
    assert runner.status("t").result == {"attempt": 2}  # type: ignore[union-attr]


def test_the_first_step_can_run_in_the_callers_thread_before_start_returns(runner: OperationRunner) -> None:
    seen: list[str] = []

    def steps() -> Steps:
        seen.append(threading.current_thread().name)
        yield 0.0
        return {}

    runner.start("here", steps(), first_step_here=True)
    assert seen == [threading.current_thread().name]
    _wait(runner, "here")
    assert runner.status("here").state == "succeeded"  # type: ignore[union-attr]
