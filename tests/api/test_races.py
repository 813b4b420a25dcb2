"""Races between shim instances on one database: R4 holds and /backup never answers 500."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from shimkit import (
    START,
    ApiClient,
    FlakyDriver,
    all_stored_ids,
    cluster_body,
    create_cluster,
    create_project,
)

from shim.app import create_app, shutdown
from shim.auth import create_key
from shim.clock import ManualClock
from shim.config import Config
from shim.drivers.local import LocalDriver

ROUNDS = 25


@pytest.fixture
def two_shims(data_dir: Path) -> Iterator[tuple[ApiClient, ApiClient]]:
    """Two shim instances (as two processes would be) on one SQLite database and one data directory."""
    apps: list[Flask] = []
    for _ in range(2):
        config = Config(
            data_dir=data_dir,
            clock=ManualClock(START),
            manual_clock=True,
            scheduler=False,
            driver_workers=2,
            driver_factory=lambda c: FlakyDriver(LocalDriver(c.data_dir, durable=False)),
        )
        apps.append(create_app(config))
    with apps[0].extensions["cloudbackup"].service.store.write() as session:
        key = create_key(session, project_id=None, read_only=False)
    yield ApiClient(apps[0].test_client(), key), ApiClient(apps[1].test_client(), key)
    for app in apps:
        shutdown(app)


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def backup_methods(client: ApiClient, project_id: str) -> list[str | None]:
    found = []
    for name in ("c1", "c2"):
        response = client.get(f"/groups/{project_id}/clusters/{name}/backup")
        if response.status_code == 404:  # c1 refused at creation
            continue
        backup = response.get_json()
        found.append(backup["method"] if backup["enabled"] else None)
    return found


@pytest.mark.parametrize("enable_c1", ["patch", "post"])
def test_r4_holds_when_two_shims_enable_different_methods_in_one_project_at_once(
    two_shims: tuple[ApiClient, ApiClient], enable_c1: str
) -> None:
    one, two = two_shims
    for round_number in range(ROUNDS):
        project_id = create_project(one, f"race-{enable_c1}-{round_number}")
        create_cluster(one, project_id, "c2")
        if enable_c1 == "patch":
            create_cluster(one, project_id, "c1")

            def first(project_id: str = project_id) -> Any:
                return one.patch(f"/groups/{project_id}/clusters/c1", {"providerBackupEnabled": True})
        else:

            def first(project_id: str = project_id) -> Any:
                return one.post(
                    f"/groups/{project_id}/clusters", cluster_body("c1", providerBackupEnabled=True)
                )

        def second(project_id: str = project_id) -> Any:
            return two.put(f"/groups/{project_id}/clusters/c2/backup", {"method": "CONTINUOUS"})

        answers = at_once(first, second)
        codes = sorted(a.status_code for a in answers)
        assert codes in ([200, 409], [201, 409]), [a.get_json() for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.get_json()["errorCode"] == "BACKUP_METHOD_LOCKED"
        enabled = [m for m in backup_methods(one, project_id) if m is not None]
        assert len(enabled) == 1, (round_number, enabled)


def test_concurrent_disable_and_enable_of_one_clusters_backup_never_answer_500(
    two_shims: tuple[ApiClient, ApiClient], data_dir: Path
) -> None:
    one, two = two_shims
    project_id = create_project(one)
    create_cluster(one, project_id, "c1")
    path = f"/groups/{project_id}/clusters/c1/backup"
    outcomes: set[tuple[str, int, str | None]] = set()
    for _round in range(ROUNDS):
        answers = at_once(
            lambda: one.put(path, {"method": "CLOUD_PROVIDER_SNAPSHOTS"}),
            lambda: two.delete(path),
            lambda: two.put(path, {"method": "CLOUD_PROVIDER_SNAPSHOTS"}),
            lambda: one.delete(path),
        )
        for name, answer in zip(("put", "delete", "put", "delete"), answers, strict=True):
            assert answer.status_code < 500, answer.get_json()
            code = answer.get_json()["errorCode"] if answer.status_code >= 400 else None
            outcomes.add((name, answer.status_code, code))
    assert {o for o in outcomes if o[1] >= 400} <= {("put", 409, "BACKUP_CHANGE_IN_PROGRESS")}
    # Whatever the order, the end state is one a user can reason about: backup off means no snapshot.
    backup = one.get(path).get_json()
    listing = one.get(f"{path}/snapshots").get_json()
    if not backup["enabled"]:
        assert listing["totalCount"] == 0
        assert all_stored_ids(data_dir) == set()
    else:
        assert listing["totalCount"] >= 1
        assert all_stored_ids(data_dir) == {s["id"] for s in listing["results"]}


class InterleavingDriver(FlakyDriver):
    """Runs `meanwhile` once, when the shim creates a volume: another process acting in that window."""

    def __init__(self, inner: LocalDriver) -> None:
        super().__init__(inner)
        self.meanwhile: Callable[[], Any] | None = None

    def create_volume(self, spec: Any) -> str:
        if self.meanwhile is not None:
            action, self.meanwhile = self.meanwhile, None
            action()
        return super().create_volume(spec)


def test_a_patch_that_lost_the_r4_race_while_adding_a_region_is_refused_and_leaves_no_volume(
    data_dir: Path,
) -> None:
    drivers: list[InterleavingDriver] = []

    def factory(config: Config) -> InterleavingDriver:
        drivers.append(InterleavingDriver(LocalDriver(config.data_dir, durable=False)))
        return drivers[-1]

    apps = [
        create_app(
            Config(data_dir=data_dir, clock=ManualClock(START), manual_clock=True, driver_factory=factory)
        )
        for _ in range(2)
    ]
    try:
        with apps[0].extensions["cloudbackup"].service.store.write() as session:
            key = create_key(session, project_id=None, read_only=False)
        one, two = (ApiClient(app.test_client(), key) for app in apps)
        project_id = create_project(one)
        create_cluster(one, project_id, "c1")
        create_cluster(one, project_id, "c2")
        volumes_before = sorted(p.name for p in data_dir.rglob("*.img"))
        before = one.get(f"/groups/{project_id}/clusters/c1").get_json()
        won: list[Any] = []
        # Between the PATCH's checks and its write, the other shim enables CONTINUOUS on c2.
        drivers[0].meanwhile = lambda: won.append(
            two.put(f"/groups/{project_id}/clusters/c2/backup", {"method": "CONTINUOUS"})
        )
        body = cluster_body("c1", providerBackupEnabled=True)
        body["replicationSpecs"][0]["regionsConfig"]["centralus"] = {"priority": 5, "electableNodes": 1}
        del body["name"]
        refused = one.patch(f"/groups/{project_id}/clusters/c1", body)
        assert won and won[0].status_code == 200, won and won[0].get_json()
        assert refused.status_code == 409, refused.get_json()
        assert refused.get_json()["errorCode"] == "BACKUP_METHOD_LOCKED"
        assert one.get(f"/groups/{project_id}/clusters/c1").get_json() == before
        assert sorted(p.name for p in data_dir.rglob("*.img")) == volumes_before
    finally:
        for app in apps:
            shutdown(app)


def test_a_disable_cut_short_elsewhere_blocks_enabling_only_until_the_periodic_reconciliation(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    from sqlalchemy import update

    from shim.store.models import Cluster

    project_id = create_project(client)
    create_cluster(client, project_id, "c1")
    path = f"/groups/{project_id}/clusters/c1/backup"
    assert client.put(path, {"method": "CLOUD_PROVIDER_SNAPSHOTS"}).status_code == 200
    service = app.extensions["cloudbackup"].service
    # Another shim disabled backup and died before deleting the snapshots (its committed first step).
    with service.store.write() as session:
        session.execute(update(Cluster).values(backup_method=None, reference_time=None, next_due_at=None))
    refused = client.put(path, {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    assert refused.status_code == 409
    assert refused.get_json()["errorCode"] == "BACKUP_CHANGE_IN_PROGRESS"
    service.reconcile_storage()  # what the scheduler runs every --reconcile-interval seconds
    assert all_stored_ids(data_dir) == set()
    enabled = client.put(path, {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    assert enabled.status_code == 200, enabled.get_json()
    assert len(enabled.get_json()["snapshotIds"]) == 1
