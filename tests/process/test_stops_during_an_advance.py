"""Stopping `cloudbackup serve` (SIGTERM or kill -9) in the middle of a long clock advance, then restarting:
R8 holds, no file without a row, no row stuck, no gap in the schedule."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from shimkit import all_stored_ids, cluster_body
from test_serve import Api, Shim, create_key
from test_serve import shims as shims  # the fixture

from shim.clock import parse_time

CLUSTERS = ("c1", "c2", "c3")
DAYS = 30
DAY = timedelta(days=1)


def saved_clock(data_dir: Path) -> str | None:
    """The manual clock as the shim last committed it (each step of an advance commits it)."""
    with contextlib.closing(sqlite3.connect(data_dir / "cloudbackup.db", timeout=10)) as db:
        row = db.execute("SELECT value FROM settings WHERE key = 'manual_clock_now'").fetchone()
    return row[0] if row else None


def between_steps(data_dir: Path) -> bool:
    """A step's results are recorded and its retention is not applied yet: the stop that hurt R8."""
    with contextlib.closing(sqlite3.connect(data_dir / "cloudbackup.db", timeout=10)) as db:
        unfinished = db.execute(
            "SELECT count(*) FROM snapshots WHERE status IN ('queued', 'inProgress')"
        ).fetchone()[0]
        most = db.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM snapshots WHERE snapshot_type = 'scheduled' "
            "AND status = 'completed' GROUP BY cluster_id)"
        ).fetchone()[0]
    return unfinished == 0 and (most or 0) > 3


def check_invariants(api: Api, project: str, data_dir: Path) -> None:
    now = parse_time(api("GET", "/admin/clock", expect=200)["now"])
    live: set[str] = set()
    for name in CLUSTERS:
        rows = api("GET", f"/groups/{project}/clusters/{name}/backup/snapshots?itemsPerPage=500", expect=200)
        snapshots = rows["results"]
        # No row stuck: every snapshot finished, one way or the other.
        assert {s["status"] for s in snapshots} <= {"completed", "failed"}, snapshots
        scheduled = [s for s in snapshots if s["snapshotType"] == "scheduled"]
        completed = [s for s in scheduled if s["status"] == "completed"]
        # R8: at most three scheduled snapshots are kept.
        assert len(completed) <= 3, (name, [s["createdAt"] for s in completed])
        live |= {s["id"] for s in snapshots if s["status"] == "completed"}
        # No gap: the kept ones are the last consecutive slots before the next one, which is still ahead.
        backup = api("GET", f"/groups/{project}/clusters/{name}/backup", expect=200)
        next_due = parse_time(backup["nextSnapshotAt"])
        assert next_due > now, (name, backup)
        times = sorted((parse_time(s["createdAt"]) for s in scheduled), reverse=True)
        assert times == [next_due - DAY * (k + 1) for k in range(len(times))], (name, times, next_due)
        assert len(completed) == min(3, (next_due - parse_time(backup["referenceTime"])) // DAY)
    # No file without a row (and no half-written copy), nor a completed row without its file.
    assert all_stored_ids(data_dir) == live
    assert not list((data_dir / "snapshots").rglob("*.partial"))


@pytest.mark.parametrize("stop_after_days", [3, 9, 17])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_stop_in_the_middle_of_a_long_advance_keeps_every_invariant_after_the_restart(
    data_dir: Path, shims: list[Shim], signum: int, stop_after_days: int
) -> None:
    key = create_key(data_dir)
    # Each step of the advance pauses after recording its results, so that the stop can land there.
    shim = Shim(data_dir, "--manual-clock", env={"CLOUDBACKUP_TEST_SNAPSHOT_DELAY": "step:0.2"})
    shims.append(shim)
    api = Api(shim, key)
    project = api("POST", "/groups", {"name": "stops"}, expect=201)["id"]
    for name in CLUSTERS:
        api("POST", f"/groups/{project}/clusters", cluster_body(name, providerBackupEnabled=True), expect=201)
    start = parse_time(api("GET", "/admin/clock", expect=200)["now"])

    answers: list[Any] = []

    def long_advance() -> None:
        with contextlib.suppress(requests.ConnectionError):
            answers.append(Api(shim, key)("POST", "/admin/clock", {"advanceSeconds": DAYS * 86400}))

    advancing = threading.Thread(target=long_advance, daemon=True)
    advancing.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        saved = saved_clock(data_dir)
        if saved and parse_time(saved) >= start + DAY * stop_after_days and between_steps(data_dir):
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the advance did not get far enough in time")
    if signum == signal.SIGKILL:
        shim.kill()
    else:
        code, log = shim.stop(signal.SIGTERM)
        assert code == 0, log
    advancing.join(30)
    if signum == signal.SIGTERM:
        # The advance ended at the step it was in, saying so, instead of walking the whole month first.
        (answer,) = answers
        assert answer["errorCode"] == "SHUTTING_DOWN", answer
        assert parse_time(saved_clock(data_dir) or "") < start + DAY * DAYS

    restarted = Shim(data_dir, "--manual-clock")
    shims.append(restarted)
    api = Api(restarted, key)
    check_invariants(api, project, data_dir)
    # The schedule goes on from where it stood: walking the rest keeps them too.
    now = parse_time(api("GET", "/admin/clock", expect=200)["now"])
    rest = int((start + DAY * DAYS - now).total_seconds())
    api("POST", "/admin/clock", {"advanceSeconds": max(rest, 0)}, expect=200)
    check_invariants(api, project, data_dir)
    assert restarted.stop()[0] == 0
