"""GET /groups/{groupId}/clusters?includeBackup=true: each cluster with the backup its own path answers."""

from __future__ import annotations

from flask import Flask
from shimkit import ApiClient, create_cluster, create_project, enable_backup, settle


def test_the_list_embeds_for_each_cluster_exactly_what_its_backup_path_answers(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "plain")
    create_cluster(client, project_id, "backed")
    enable_backup(client, project_id, "backed")
    settle(client)
    listing = client.get(f"/groups/{project_id}/clusters?includeBackup=true").get_json()
    assert listing["totalCount"] == 2
    for item in listing["results"]:
        own = client.get(f"/groups/{project_id}/clusters/{item['name']}/backup").get_json()
        assert item["backup"] == own
        assert {k: v for k, v in item.items() if k != "backup"} == client.get(
            f"/groups/{project_id}/clusters/{item['name']}"
        ).get_json()
    by_name = {item["name"]: item["backup"] for item in listing["results"]}
    assert by_name["plain"]["enabled"] is False
    assert by_name["backed"]["method"] == "CLOUD_PROVIDER_SNAPSHOTS"
    assert len(by_name["backed"]["snapshotIds"]) == 1


def test_without_include_backup_the_list_keeps_the_contract_shape(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    for query in ("", "?includeBackup=false"):
        item = client.get(f"/groups/{project_id}/clusters{query}").get_json()["results"][0]
        assert "backup" not in item


def test_include_backup_must_be_true_or_false(client: ApiClient) -> None:
    project_id = create_project(client)
    response = client.get(f"/groups/{project_id}/clusters?includeBackup=perhaps")
    assert response.status_code == 400
    assert response.get_json()["parameters"] == ["includeBackup"]


def test_the_openapi_document_describes_include_backup_on_the_cluster_list(app: Flask) -> None:
    doc = app.test_client().get("/api/atlas/v1.0/openapi.json").get_json()
    parameters = doc["paths"]["/api/atlas/v1.0/groups/{group_id}/clusters"]["get"]["parameters"]
    described = {p["name"]: p for p in parameters}
    assert described["includeBackup"]["in"] == "query"
    assert described["includeBackup"]["schema"]["type"] == "boolean"
