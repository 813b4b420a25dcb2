"""Clusters through the API: create with volumes, read, list, change (PATCH) and terminate.

The tests of volumes run once per driver kind, looking at that driver's storage itself.
"""

from __future__ import annotations

import pytest
from shimkit import ApiClient, cluster_body, create_cluster, create_project, enable_backup, settle
from shimstorage import ShimStorage, volume_handles


def counts(storage: ShimStorage) -> dict[str, int]:
    """Region -> how many member volumes storage holds there."""
    return {region: len(handles) for region, handles in storage.volumes_by_region().items()}


@pytest.mark.drivers()
def test_a_created_cluster_has_one_volume_per_electable_member_in_each_region(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    body = create_cluster(client, project_id)
    assert body["name"] == "rs1" and body["groupId"] == project_id
    assert body["stateName"] == "IDLE"
    assert body["preferredRegion"] == "eastus2"
    assert body["providerBackupEnabled"] is False and body["backupMethod"] is None
    assert body["replicationSpecs"][0]["regionsConfig"]["westus2"] == {"priority": 6, "electableNodes": 2}
    assert counts(storage) == {"eastus2": 3, "westus2": 2}
    for handle in volume_handles(storage):
        assert storage.volume_size(handle) == 1 << 30  # empty, diskSizeGB GiB
        assert storage.read(handle, 0, 4096) == bytes(4096)


def test_region_defaults_are_priority_7_and_three_members(client: ApiClient) -> None:
    project_id = create_project(client)
    response = client.post(
        f"/groups/{project_id}/clusters",
        {
            "name": "small",
            "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
            "replicationSpecs": [{"regionsConfig": {"westeurope": {}}}],
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["replicationSpecs"][0]["regionsConfig"] == {
        "westeurope": {"priority": 7, "electableNodes": 3}
    }
    assert body["clusterType"] == "REPLICASET"
    assert body["diskSizeGB"] == 10


def test_clusters_are_listed_and_read_by_name(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "a")
    create_cluster(client, project_id, "b")
    listing = client.get(f"/groups/{project_id}/clusters").get_json()
    assert listing["totalCount"] == 2
    assert {c["name"] for c in listing["results"]} == {"a", "b"}
    assert client.get(f"/groups/{project_id}/clusters/b").get_json()["name"] == "b"


def test_an_unknown_cluster_is_cluster_not_found(client: ApiClient) -> None:
    project_id = create_project(client)
    response = client.get(f"/groups/{project_id}/clusters/nope")
    assert response.status_code == 404
    assert response.get_json()["errorCode"] == "CLUSTER_NOT_FOUND"


def test_two_clusters_of_a_project_cannot_share_a_name_but_two_projects_can(client: ApiClient) -> None:
    first = create_project(client, "one")
    second = create_project(client, "two")
    create_cluster(client, first)
    response = client.post(f"/groups/{first}/clusters", cluster_body())
    assert response.status_code == 409
    assert response.get_json()["errorCode"] == "DUPLICATE_CLUSTER_NAME"
    create_cluster(client, second)


def test_a_cluster_can_be_created_with_backup_enabled(client: ApiClient) -> None:
    project_id = create_project(client)
    body = create_cluster(client, project_id, providerBackupEnabled=True)
    assert body["providerBackupEnabled"] is True
    assert body["backupMethod"] == "CLOUD_PROVIDER_SNAPSHOTS"
    snapshots = client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()
    assert snapshots["totalCount"] == 1
    assert snapshots["results"][0]["status"] == "completed"


@pytest.mark.drivers()
def test_patch_scales_the_tier_and_grows_the_volumes(client: ApiClient, storage: ShimStorage) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    response = client.patch(
        f"/groups/{project_id}/clusters/rs1",
        {"providerSettings": {"providerName": "AZURE", "instanceSizeName": "M30"}, "diskSizeGB": 2},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["providerSettings"]["instanceSizeName"] == "M30"
    assert body["diskSizeGB"] == 2
    assert len(volume_handles(storage)) == 5
    for handle in volume_handles(storage):
        assert storage.volume_size(handle) == 2 << 30


def test_patch_cannot_shrink_the_volumes(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, diskSizeGB=4)
    response = client.patch(f"/groups/{project_id}/clusters/rs1", {"diskSizeGB": 2})
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "DISK_SIZE_DECREASE_NOT_SUPPORTED"
    assert body["parameters"] == ["/diskSizeGB"]
    assert client.get(f"/groups/{project_id}/clusters/rs1").get_json()["diskSizeGB"] == 4


@pytest.mark.drivers()
def test_patch_of_regions_adds_and_removes_member_volumes(client: ApiClient, storage: ShimStorage) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    response = client.patch(
        f"/groups/{project_id}/clusters/rs1",
        {
            "replicationSpecs": [
                {
                    "regionsConfig": {
                        "eastus2": {"priority": 7, "electableNodes": 1},
                        "uksouth": {"priority": 5, "electableNodes": 2},
                    }
                }
            ]
        },
    )
    assert response.status_code == 200, response.get_json()
    assert counts(storage) == {"eastus2": 1, "uksouth": 2}


@pytest.mark.drivers()
def test_the_preferred_region_can_move_and_new_snapshots_follow_it(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    response = client.patch(
        f"/groups/{project_id}/clusters/rs1",
        {"replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 6}, "westus2": {"priority": 7}}}]},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["preferredRegion"] == "westus2"
    taken = client.post(f"/groups/{project_id}/clusters/rs1/backup/snapshots", {}).get_json()
    assert taken["regionName"] == "westus2"
    settle(client)
    assert storage.stored_by_region()["westus2"] == {taken["id"]}
    regions = [
        s["regionName"]
        for s in client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["results"]
    ]
    assert regions == ["westus2", "eastus2"]  # the first snapshot stays where it was taken
    assert client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()["storageRegion"] == "westus2"


def test_patch_can_enable_and_disable_backup(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    on = client.patch(f"/groups/{project_id}/clusters/rs1", {"providerBackupEnabled": True})
    assert on.status_code == 200 and on.get_json()["providerBackupEnabled"] is True
    assert client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["totalCount"] == 1
    off = client.patch(f"/groups/{project_id}/clusters/rs1", {"providerBackupEnabled": False})
    assert off.status_code == 200 and off.get_json()["providerBackupEnabled"] is False
    assert client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["totalCount"] == 0


@pytest.mark.drivers()
def test_terminating_a_cluster_deletes_its_volumes(client: ApiClient, storage: ShimStorage) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    assert len(volume_handles(storage)) == 5
    assert client.delete(f"/groups/{project_id}/clusters/rs1").status_code == 204
    assert volume_handles(storage) == set()
    assert client.get(f"/groups/{project_id}/clusters/rs1").status_code == 404
    assert client.delete(f"/groups/{project_id}/clusters/rs1").status_code == 404
    assert client.delete(f"/groups/{project_id}").status_code == 204
