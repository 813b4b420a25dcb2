"""The schedule's batches: retention (R8) of one batch runs beside the next batch's copies; none is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from shimkit import ApiClient, advance, create_cluster, create_project
from shimstorage import ShimStorage, stored_ids

from shim.clock import ManualClock
from shim.config import Config
from shim.service import Service

DAY = 86400
CLUSTERS = 5


@pytest.fixture
def config(config: Config) -> Config:
    # Two clusters a batch, so five clusters make three batches, the last one short.
    config.batch_size = 2
    return config


def scheduled_per_cluster(client: ApiClient, project_id: str) -> dict[str, list[str]]:
    found = {}
    for index in range(CLUSTERS):
        listing = client.get(f"/groups/{project_id}/clusters/rs{index}/backup/snapshots").get_json()
        assert listing["totalCount"] == len(listing["results"])
        found[f"rs{index}"] = [s["id"] for s in listing["results"] if s["status"] == "completed"]
    return found


def backed_up_clusters(client: ApiClient) -> str:
    project_id = create_project(client)
    for index in range(CLUSTERS):
        create_cluster(client, project_id, f"rs{index}", providerBackupEnabled=True)
    return project_id


def test_an_advance_over_many_batches_leaves_every_cluster_its_last_three_and_storage_the_same(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = backed_up_clusters(client)
    advance(client, 4 * DAY)  # five snapshots each: two deleted per cluster, batch after batch
    kept = scheduled_per_cluster(client, project_id)
    assert all(len(ids) == 3 for ids in kept.values()), kept
    assert stored_ids(storage) == {sid for ids in kept.values() for sid in ids}


def test_a_tick_over_many_batches_applies_the_retention_of_its_last_batch_too(
    app: Flask, client: ApiClient, clock: ManualClock, storage: ShimStorage
) -> None:
    project_id = backed_up_clusters(client)
    advance(client, 2 * DAY)  # three snapshots each: retention has nothing to delete yet
    before = scheduled_per_cluster(client, project_id)
    service: Service = app.extensions["cloudbackup"].service
    clock.set(clock.now() + timedelta(days=1))
    assert service.tick() == CLUSTERS
    after = scheduled_per_cluster(client, project_id)
    for name, ids in after.items():
        assert len(ids) == 3 and ids[1:] == before[name][:2], (name, ids, before[name])
    assert stored_ids(storage) == {sid for ids in after.values() for sid in ids}


def test_a_page_of_snapshots_past_the_last_still_counts_them_all(client: ApiClient) -> None:
    project_id = backed_up_clusters(client)
    advance(client, 2 * DAY)
    path = f"/groups/{project_id}/clusters/rs0/backup/snapshots"
    newest_first = [s["id"] for s in client.get(path).get_json()["results"]]
    assert len(newest_first) == 3
    second = client.get(path + "?itemsPerPage=2&pageNum=2").get_json()
    assert ([s["id"] for s in second["results"]], second["totalCount"]) == (newest_first[2:], 3)
    beyond = client.get(path + "?itemsPerPage=2&pageNum=5").get_json()
    assert (beyond["results"], beyond["totalCount"]) == ([], 3)


def test_a_cluster_without_snapshots_lists_none_and_an_unknown_one_is_not_found(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "plain")
    listing = client.get(f"/groups/{project_id}/clusters/plain/backup/snapshots").get_json()
    assert (listing["results"], listing["totalCount"]) == ([], 0)
    past = client.get(f"/groups/{project_id}/clusters/plain/backup/snapshots?pageNum=3").get_json()
    assert (past["results"], past["totalCount"]) == ([], 0)
    missing = client.get(f"/groups/{project_id}/clusters/nope/backup/snapshots")
    assert (missing.status_code, missing.get_json()["errorCode"]) == (404, "CLUSTER_NOT_FOUND")
    no_project = client.get("/groups/" + "0" * 24 + "/clusters/plain/backup/snapshots")
    assert (no_project.status_code, no_project.get_json()["errorCode"]) == (404, "GROUP_NOT_FOUND")
