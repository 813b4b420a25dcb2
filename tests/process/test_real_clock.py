"""The schedule on the real clock: `serve` without --manual-clock catches an overdue cluster up on its own."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from shimkit import all_stored_ids, cluster_body
from sqlalchemy import select
from test_serve import Api, Shim, create_key
from test_serve import shims as shims  # the fixture

from shim.clock import format_time, parse_time
from shim.store import Store, default_url
from shim.store.models import Cluster, Snapshot

DAY = timedelta(days=1)
DOWNTIME = timedelta(days=2, hours=12)


def as_if_stopped_earlier(data_dir: Path, by: timedelta) -> None:
    """Move every recorded time back: the database of a shim that stopped `by` ago."""
    store = Store(default_url(data_dir), pool_size=1)
    try:
        with store.write() as session:
            for cluster in session.execute(select(Cluster)).scalars():
                cluster.created_at -= by
                if cluster.reference_time is not None and cluster.next_due_at is not None:
                    cluster.reference_time -= by
                    cluster.next_due_at -= by
            for snapshot in session.execute(select(Snapshot)).scalars():
                snapshot.created_at -= by
                snapshot.slot_time = snapshot.slot_time - by if snapshot.slot_time else None
                snapshot.finished_at = snapshot.finished_at - by if snapshot.finished_at else None
    finally:
        store.close()


def backed_up_by_a_stopped_shim(
    data_dir: Path, shims: list[Shim], name: str, ago: timedelta
) -> tuple[tuple[str, str], str]:
    """A project whose cluster `rs1` got backup from a shim that stopped `ago` (its times moved back)."""
    key = create_key(data_dir)
    first = Shim(data_dir, "--manual-clock")
    shims.append(first)
    api = Api(first, key)
    project = api("POST", "/groups", {"name": name}, expect=201)["id"]
    api("POST", f"/groups/{project}/clusters", cluster_body(providerBackupEnabled=True), expect=201)
    assert first.stop()[0] == 0
    as_if_stopped_earlier(data_dir, ago)
    return key, project


def test_a_shim_on_the_real_clock_takes_one_catch_up_snapshot_of_an_overdue_cluster_on_its_own(
    data_dir: Path, shims: list[Shim]
) -> None:
    key, project = backed_up_by_a_stopped_shim(data_dir, shims, "overdue", DOWNTIME)

    real = Shim(data_dir)  # no --manual-clock, no admin call from here on
    shims.append(real)
    api = Api(real, key)
    backup_path = f"/groups/{project}/clusters/rs1/backup"
    backup = api("GET", backup_path, expect=200)
    reference = parse_time(backup["referenceTime"])
    # Two slots were missed (reference + 1 day, + 2 days): one catch-up snapshot, and the next slot is
    # the first one ahead, on the reference's 24-hour grid.
    assert parse_time(backup["nextSnapshotAt"]) == reference + 3 * DAY
    listing = api("GET", f"{backup_path}/snapshots", expect=200)
    assert [s["status"] for s in listing["results"]] == ["completed", "completed"]
    catch_up, original = listing["results"]
    assert original["createdAt"] == format_time(reference)
    assert parse_time(catch_up["createdAt"]) > reference + 2 * DAY
    assert all_stored_ids(data_dir) == {catch_up["id"], original["id"]}
    # The scheduler thread keeps ticking (every second): it takes no further snapshot, no burst.
    time.sleep(3)
    again = api("GET", f"{backup_path}/snapshots", expect=200)
    assert [s["id"] for s in again["results"]] == [catch_up["id"], original["id"]]
    assert api("GET", backup_path, expect=200)["nextSnapshotAt"] == backup["nextSnapshotAt"]
    assert real.stop()[0] == 0


def test_a_shim_on_the_real_clock_takes_a_slot_that_falls_due_while_it_serves(
    data_dir: Path, shims: list[Shim]
) -> None:
    # Enabled almost a day ago: the next slot falls due a few seconds from now.
    key, project = backed_up_by_a_stopped_shim(data_dir, shims, "due-soon", DAY - timedelta(seconds=8))

    real = Shim(data_dir)
    shims.append(real)
    api = Api(real, key)
    backup_path = f"/groups/{project}/clusters/rs1/backup"
    due = parse_time(api("GET", backup_path, expect=200)["nextSnapshotAt"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listing = api("GET", f"{backup_path}/snapshots", expect=200)
        if listing["totalCount"] == 2 and listing["results"][0]["status"] == "completed":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no snapshot was taken at {format_time(due)}: {listing}")
    assert parse_time(listing["results"][0]["createdAt"]) >= due
    assert parse_time(api("GET", backup_path, expect=200)["nextSnapshotAt"]) == due + DAY
    assert real.stop()[0] == 0
