"""provider.waiting: a started snapshot or restore is read again until it has finished, within its timeout."""

from __future__ import annotations

import time
from typing import Any

import pytest

from provider.waiting import until_finished


class Answers:
    """The statuses an operation goes through, one per read, and the paths read."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)
        self.paths: list[str] = []

    def get(self, path: str) -> dict[str, Any]:
        self.paths.append(path)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"id": "op", "status": status}


def test_an_operation_that_finished_at_once_is_not_read_again() -> None:
    answers = Answers("queued")
    started = {"id": "op", "status": "completed"}
    assert until_finished(answers, "/op", started, deadline=time.monotonic() + 60) is started
    assert answers.paths == []


def test_a_running_operation_is_read_until_it_has_finished() -> None:
    answers = Answers("queued", "inProgress", "failed")
    done = until_finished(answers, "/op", {"id": "op", "status": "queued"}, deadline=time.monotonic() + 60)
    assert done["status"] == "failed"
    assert answers.paths == ["/op", "/op", "/op"]


def test_an_operation_still_running_at_the_deadline_is_a_timeout() -> None:
    answers = Answers("inProgress")
    with pytest.raises(TimeoutError):
        until_finished(answers, "/op", {"id": "op", "status": "queued"}, deadline=time.monotonic() + 0.1)
    assert answers.paths and set(answers.paths) == {"/op"}
