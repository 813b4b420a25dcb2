"""Projects through the API: create, list, get, delete, and the names and scopes around them."""

from __future__ import annotations

from shimkit import ApiClient, create_cluster, create_project, enable_backup


def test_a_created_project_has_an_id_a_name_and_no_backup_method_yet(client: ApiClient) -> None:
    response = client.post("/groups", {"name": "payments"})
    assert response.status_code == 201
    body = response.get_json()
    assert len(body["id"]) == 24 and int(body["id"], 16) >= 0
    assert body["name"] == "payments"
    assert body["backupMethod"] is None
    assert body["clusterCount"] == 0
    assert body["created"].endswith("Z")


def test_projects_are_listed_newest_first_with_a_total_count(client: ApiClient, clock) -> None:
    from datetime import timedelta

    first = create_project(client, "first")
    clock.set(clock.now() + timedelta(seconds=1))
    second = create_project(client, "second")
    body = client.get("/groups").get_json()
    assert body["totalCount"] == 2
    assert [p["id"] for p in body["results"]] == [second, first]


def test_the_list_of_projects_pages_like_atlas(client: ApiClient) -> None:
    for index in range(5):
        create_project(client, f"p{index}")
    page = client.get("/groups?itemsPerPage=2&pageNum=3")
    body = page.get_json()
    assert body["totalCount"] == 5
    assert len(body["results"]) == 1


def test_a_bad_page_number_is_refused_with_the_parameter_named(client: ApiClient) -> None:
    response = client.get("/groups?pageNum=0")
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "INVALID_QUERY_PARAMETER"
    assert response.get_json()["parameters"] == ["pageNum"]


def test_a_project_is_read_by_its_id(client: ApiClient) -> None:
    project_id = create_project(client)
    body = client.get(f"/groups/{project_id}").get_json()
    assert body["id"] == project_id and body["name"] == "proj"


def test_an_unknown_project_is_group_not_found(client: ApiClient) -> None:
    for project_id in ("0123456789abcdef01234567", "not-an-id"):
        response = client.get(f"/groups/{project_id}")
        assert response.status_code == 404
        assert response.get_json()["errorCode"] == "GROUP_NOT_FOUND"


def test_two_projects_cannot_share_a_name(client: ApiClient) -> None:
    create_project(client, "same")
    response = client.post("/groups", {"name": "same"})
    assert response.status_code == 409
    assert response.get_json()["errorCode"] == "DUPLICATE_PROJECT_NAME"
    assert client.get("/groups").get_json()["totalCount"] == 1


def test_a_project_without_clusters_is_deleted(client: ApiClient) -> None:
    project_id = create_project(client)
    assert client.delete(f"/groups/{project_id}").status_code == 204
    assert client.get(f"/groups/{project_id}").status_code == 404


def test_a_project_with_clusters_cannot_be_deleted(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    response = client.delete(f"/groups/{project_id}")
    assert response.status_code == 409
    body = response.get_json()
    assert body["errorCode"] == "CANNOT_DELETE_GROUP_WITH_CLUSTERS"
    assert "Terminate" in body["detail"]
    assert client.get(f"/groups/{project_id}").status_code == 200


def test_the_project_shows_the_backup_method_its_clusters_lock_it_to(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    body = client.get(f"/groups/{project_id}").get_json()
    assert body["backupMethod"] == "CLOUD_PROVIDER_SNAPSHOTS"
    assert body["clusterCount"] == 1
    listed = client.get("/groups").get_json()["results"][0]
    assert listed["backupMethod"] == "CLOUD_PROVIDER_SNAPSHOTS"
    client.delete(f"/groups/{project_id}/clusters/rs1/backup")
    assert client.get(f"/groups/{project_id}").get_json()["backupMethod"] is None
