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
    # A second snapshot, so that the order of snapshotIds (newest first) is compared too.
    taken = client.post(f"/groups/{project_id}/clusters/backed/backup/snapshots", {"description": "more"})
    assert taken.status_code in (200, 201), taken.get_json()
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
    assert len(by_name["backed"]["snapshotIds"]) == 2


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


def test_with_include_backup_pages_and_unknown_projects_answer_as_the_plain_list_does(
    client: ApiClient,
) -> None:
    project_id = create_project(client)
    for name in ("a", "b", "c"):
        create_cluster(client, project_id, name)
    for page in (1, 2, 3):
        query = f"itemsPerPage=1&pageNum={page}"
        plain = client.get(f"/groups/{project_id}/clusters?{query}").get_json()
        embedded = client.get(f"/groups/{project_id}/clusters?{query}&includeBackup=true").get_json()
        assert embedded["totalCount"] == plain["totalCount"] == 3
        assert [c["name"] for c in embedded["results"]] == [c["name"] for c in plain["results"]]
    missing = client.get("/groups/0123456789abcdef01234567/clusters?includeBackup=true")
    assert missing.status_code == 404 and missing.get_json()["errorCode"] == "GROUP_NOT_FOUND"
