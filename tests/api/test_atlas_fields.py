"""What an Atlas Admin API client reads from cloud backup endpoints: Atlas' field names and links."""

from __future__ import annotations

from shimkit import ApiClient, advance, create_cluster, create_project, enable_backup, settle


def test_snapshots_carry_atlas_frequency_type_and_a_self_link(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    base = f"/groups/{project_id}/clusters/rs1/backup/snapshots"
    taken = client.post(base, {"description": "atlas", "retentionInDays": 1}).get_json()
    settle(client)

    listed = client.get(base).get_json()["results"]

    assert {s["snapshotType"]: s["frequencyType"] for s in listed} == {
        "scheduled": "daily",
        "onDemand": "ondemand",
    }
    one = client.get(f"{base}/{taken['id']}").get_json()
    assert one["type"] == "replicaSet" and one["replicaSetName"] == "rs1"
    assert (one["copyRegions"], one["policyItems"], one["mongodVersion"]) == ([], [], None)
    assert [link["rel"] for link in one["links"]] == ["self"]
    assert one["links"][0]["href"].endswith(f"/api/atlas/v1.0{base}/{taken['id']}")


def test_a_snapshot_page_links_to_the_next_and_previous_pages(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    advance(client, 2 * 24 * 3600)
    base = f"/groups/{project_id}/clusters/rs1/backup/snapshots"

    first = client.get(base + "?itemsPerPage=2").get_json()
    second = client.get(base + "?itemsPerPage=2&pageNum=2").get_json()

    assert first["totalCount"] == 3
    rels = {link["rel"]: link["href"] for link in first["links"]}
    assert set(rels) == {"self", "next"} and "pageNum=2" in rels["next"] and "itemsPerPage=2" in rels["next"]
    assert {link["rel"] for link in second["links"]} == {"self", "previous"}


def test_a_restore_job_answers_what_atlas_clients_poll(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "src")
    create_cluster(client, project_id, "dst")
    enable_backup(client, project_id, "src")
    settle(client)
    snapshot_id = client.get(f"/groups/{project_id}/clusters/src/backup/snapshots").get_json()["results"][0][
        "id"
    ]
    path = f"/groups/{project_id}/clusters/src/backup/restoreJobs"
    body = {
        "snapshotId": snapshot_id,
        "deliveryType": "automated",
        "targetClusterName": "dst",
        "targetGroupId": project_id,
    }
    job = client.post(path, body).get_json()
    settle(client)

    done = client.get(f"{path}/{job['id']}").get_json()

    assert done["finishedAt"] is not None
    assert (done["failed"], done["cancelled"], done["expired"]) == (False, False, False)
    assert {link["rel"] for link in client.get(path).get_json()["links"]} == {"self"}
