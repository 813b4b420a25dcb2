"""`cloudbackup serve --driver azure` as a real process against the ARM test server: settings, disks,
snapshots, and kill -9 in the middle of Azure's operations."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from serveprocess import Serve as Shim
from shimkit import cluster_body
from shimstorage import AzureShimStorage, stored_ids, volume_handles
from test_serve import Api, cloudbackup

from shim.auth import create_key
from shim.store import Store, default_url

AZURE_VARIABLES = (
    "AZURE_SUBSCRIPTION_ID",
    "CLOUDBACKUP_AZURE_RESOURCE_GROUP",
    "CLOUDBACKUP_AZURE_ENDPOINT",
    "CLOUDBACKUP_AZURE_ACCESS_TOKEN",
    "CLOUDBACKUP_AZURE_POLLING_INTERVAL",
)


@pytest.fixture
def azure() -> Iterator[AzureShimStorage]:
    storage = AzureShimStorage()
    yield storage
    storage.close()


@pytest.fixture
def started() -> Iterator[list[Shim]]:
    shims: list[Shim] = []
    yield shims
    for shim in shims:
        if shim.process.poll() is None:
            shim.kill()


def serve_azure(
    data_dir: Path, azure: AzureShimStorage, *extra: str, env: dict[str, str] | None = None
) -> Shim:
    """serve --driver azure on the test server: the flags for where, the variables for the credential."""
    return Shim(
        data_dir,
        "--driver",
        "azure",
        "--azure-subscription-id",
        azure.arm.subscription_id,
        "--azure-resource-group",
        azure.resource_group,
        "--azure-endpoint",
        azure.arm.url,
        *extra,
        env={**azure.environment(), **(env or {})},
    )


def org_key(data_dir: Path) -> tuple[str, str]:
    """An organization key in the data directory's database (in-process: quicker than `keys create`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(default_url(data_dir), pool_size=1)
    try:
        store.migrate()
        with store.write() as session:
            return create_key(session, project_id=None, read_only=False)
    finally:
        store.close()


def rows(data_dir: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(data_dir / "cloudbackup.db")) as db:
        return sorted(db.execute("SELECT id, status FROM snapshots").fetchall())


def until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Wait for another process (or Azure) to get somewhere; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def run_serve(data_dir: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in AZURE_VARIABLES}
    return subprocess.run(
        [*cloudbackup(), "serve", "--port", "0", "--data-dir", str(data_dir), "--driver", "azure", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
    )


def test_missing_azure_settings_are_one_line_on_stderr_and_exit_code_2(data_dir: Path) -> None:
    result = run_serve(data_dir, "--azure-resource-group", "backups", env={})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cloudbackup: cannot start: the azure driver needs --azure-subscription-id (or AZURE_SUBSCRIPTION_ID)"
    ]
    assert result.stdout == ""
    assert not (data_dir / "cloudbackup.db").exists()  # nothing was done before the driver could start


def test_a_credential_azure_refuses_is_one_line_on_stderr_and_exit_code_2(
    data_dir: Path, azure: AzureShimStorage
) -> None:
    variables = {**azure.environment(), "CLOUDBACKUP_AZURE_ACCESS_TOKEN": "expired"}
    result = run_serve(data_dir, env=variables)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"cloudbackup: cannot start: the azure driver could not authenticate to {azure.arm.url}"
    )
    assert "InvalidAuthenticationToken" in line and "CLOUDBACKUP_AZURE_ACCESS_TOKEN" in line


def test_serve_on_azure_creates_disks_takes_retains_and_reconciles_snapshots_in_azure_and_deletes_them(
    data_dir: Path, azure: AzureShimStorage, started: list[Shim]
) -> None:
    key = org_key(data_dir)
    shim = serve_azure(data_dir, azure, "--manual-clock", "--reconcile-interval", "0.2")
    started.append(shim)
    assert requests.get(shim.url + "/healthz", timeout=10).json() == {"status": "ok", "driver": "azure"}
    api = Api(shim, key)
    project = api("POST", "/groups", {"name": "on-azure"}, expect=201)["id"]
    api("POST", f"/groups/{project}/clusters", cluster_body(), expect=201)
    # One empty managed disk of diskSizeGB per electable member, in each region.
    disks = azure.volumes_by_region()
    assert {region: len(ids) for region, ids in disks.items()} == {"eastus2": 3, "westus2": 2}
    assert all(azure.volume_size(disk) == 1 << 30 for disk in volume_handles(azure))
    api("PUT", f"/groups/{project}/clusters/rs1/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"}, expect=200)
    api("POST", "/admin/clock", {"advanceSeconds": 0}, expect=200)  # returns once the copy is done
    (first,) = api("GET", f"/groups/{project}/clusters/rs1/backup/snapshots", expect=200)["results"]
    assert first["status"] == "completed" and first["regionName"] == "eastus2"
    (snapshot,) = azure.snapshots()
    assert snapshot["name"] == f"cb-snap-{first['id']}"
    assert snapshot["location"] == "eastus2" and snapshot["properties"]["incremental"] is False
    assert snapshot["tags"]["cloudbackup-snapshot-id"] == first["id"]
    assert snapshot["tags"]["cloudbackup-project-id"] == project
    assert snapshot["tags"]["cloudbackup-cluster-name"] == "rs1"
    assert snapshot["properties"]["creationData"]["sourceResourceId"] in disks["eastus2"]

    api("POST", "/admin/clock", {"advanceSeconds": 4 * 86400}, expect=200)
    listing = api("GET", f"/groups/{project}/clusters/rs1/backup/snapshots", expect=200)
    assert [s["status"] for s in listing["results"]] == ["completed"] * 3  # R8
    retained = {s["id"] for s in listing["results"]}
    assert stored_ids(azure) == retained

    # A snapshot tagged as ours that no record accounts for is found while serving, and deleted.
    orphan = "0123456789abcdef01234567"
    tags = {"cloudbackup-managed": "true", "cloudbackup-snapshot-id": orphan}
    azure.arm.put_snapshot(azure.resource_group, f"cb-snap-{orphan}", "eastus2", 1, tags)
    until(lambda: stored_ids(azure) == retained, "the orphan to be deleted while serving")

    api("DELETE", f"/groups/{project}/clusters/rs1", expect=204)  # R9: snapshots and disks go
    assert stored_ids(azure) == set() and volume_handles(azure) == set()
    code, log = shim.stop(signal.SIGTERM)
    assert code == 0, log
    assert "driver azure" in log
    assert f"({orphan}): no record" in log
    assert "Request URL" not in log and "Response status" not in log  # azure-core's per-request logging


def disk_tags(azure: AzureShimStorage, disk: str) -> dict[str, str]:
    resource = azure.arm.resource(disk)
    assert resource is not None, disk
    return resource["tags"]


def start_in_background(call: Callable[[], object]) -> threading.Thread:
    def quietly() -> None:
        with contextlib.suppress(requests.RequestException):  # the process dies under it
            call()

    thread = threading.Thread(target=quietly, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("when", ["while-azure-copies", "after-azure-accepted", "before-azure-was-asked"])
def test_a_kill_9_mid_azure_snapshot_loses_no_snapshot_and_leaves_none_behind(
    data_dir: Path, azure: AzureShimStorage, started: list[Shim], when: str
) -> None:
    key = org_key(data_dir)
    hook = {"after-azure-accepted": "after:60", "before-azure-was-asked": "before:60"}.get(when)
    shim = serve_azure(
        data_dir, azure, "--manual-clock", env={"CLOUDBACKUP_TEST_SNAPSHOT_DELAY": hook} if hook else None
    )
    started.append(shim)
    api = Api(shim, key)
    project = api("POST", "/groups", {"name": "crash"}, expect=201)["id"]
    api("POST", f"/groups/{project}/clusters", cluster_body(), expect=201)
    # Azure holds each operation InProgress this long: long enough to kill the process in the middle.
    azure.arm.latency = 2.0 if when == "while-azure-copies" else 0.2
    backup = f"/groups/{project}/clusters/rs1/backup"
    start_in_background(lambda: Api(shim, key)("PUT", backup, {}))
    if when == "while-azure-copies":
        # The token is recorded and Azure is copying.
        until(lambda: [s for _, s in rows(data_dir)] == ["inProgress"], "the row to be inProgress")
        (snapshot,) = azure.snapshots()
        assert snapshot["properties"]["provisioningState"] == "Creating"
    elif when == "after-azure-accepted":
        # Azure accepted the PUT; the process sleeps before recording the token: the row says queued.
        until(lambda: azure.snapshots(), "Azure to hold the snapshot")
        assert [s for _, s in rows(data_dir)] == ["queued"]
    else:
        until(lambda: rows(data_dir), "the intent to be recorded")
        assert [s for _, s in rows(data_dir)] == ["queued"] and azure.snapshots() == []
    shim.kill()

    azure.arm.latency = 0.2
    restarted = serve_azure(data_dir, azure, "--manual-clock")
    started.append(restarted)
    Api(restarted, key)(
        "POST", "/admin/clock", {"advanceSeconds": 0}, expect=200
    )  # awaits the work in flight
    (row,) = rows(data_dir)
    assert row[1] == "completed"  # not lost
    (snapshot,) = until(azure.snapshots, "the snapshot in Azure")
    assert snapshot["name"] == f"cb-snap-{row[0]}"  # nothing left behind: one Azure snapshot, the row's
    assert azure.snapshots_started() == 1  # and Azure was asked for it once: a second copy was not taken
    assert snapshot["properties"]["provisioningState"] == "Succeeded"
    listing = Api(restarted, key)("GET", f"{backup}/snapshots", expect=200)
    assert [s["status"] for s in listing["results"]] == ["completed"]
    assert restarted.stop()[0] == 0


def test_a_kill_9_mid_azure_restore_finishes_it_after_restart_and_leaves_no_disk_behind(
    data_dir: Path, azure: AzureShimStorage, started: list[Shim]
) -> None:
    key = org_key(data_dir)
    shim = serve_azure(data_dir, azure, "--manual-clock")
    started.append(shim)
    api = Api(shim, key)
    project = api("POST", "/groups", {"name": "restore-crash"}, expect=201)["id"]
    one_region = [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 2}}}]
    api("POST", f"/groups/{project}/clusters", cluster_body("src", replicationSpecs=one_region), expect=201)
    api("POST", f"/groups/{project}/clusters", cluster_body("dst", replicationSpecs=one_region), expect=201)
    api("PUT", f"/groups/{project}/clusters/src/backup", {}, expect=200)
    api("POST", "/admin/clock", {"advanceSeconds": 0}, expect=200)
    (snapshot,) = api("GET", f"/groups/{project}/clusters/src/backup/snapshots", expect=200)["results"]
    before = volume_handles(azure)
    source_disks = {d for d in before if disk_tags(azure, d)["cloudbackup-cluster-name"] == "src"}
    assert len(before) == 4 and len(source_disks) == 2
    azure.arm.latency = 1.0
    jobs = f"/groups/{project}/clusters/src/backup/restoreJobs"
    job = api("POST", jobs, {"snapshotId": snapshot["id"], "targetClusterName": "dst"}, expect=201)
    assert job["status"] == "inProgress"
    until(lambda: len(volume_handles(azure)) == 6, "the new disks to be in the making")
    shim.kill()

    azure.arm.latency = 0.2
    restarted = serve_azure(data_dir, azure, "--manual-clock")
    started.append(restarted)
    again = Api(restarted, key)
    again("POST", "/admin/clock", {"advanceSeconds": 0}, expect=200)
    assert again("GET", f"{jobs}/{job['id']}", expect=200)["status"] == "completed"
    after = volume_handles(azure)
    # The two old disks of dst were replaced by disks made from the snapshot, not kept beside them.
    assert len(after) == 4 and after & before == source_disks
    for disk in after - before:
        assert disk_tags(azure, disk)["cloudbackup-restored-from"] == snapshot["id"]
    assert restarted.stop()[0] == 0
