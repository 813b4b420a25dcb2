"""GET /self tells a client which service and API version it reached and what its key reaches."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from shimkit import ApiClient, create_project

Key = tuple[str, str]


def test_self_names_the_service_its_api_version_and_an_organization_keys_scope(
    client: ApiClient, org_key: Key
) -> None:
    response = client.get("/self")
    assert response.status_code == 200
    assert response.get_json() == {
        "service": "cloudbackup",
        "apiVersion": "1.0",
        "publicKey": org_key[0],
        "scope": "organization",
        "projectId": None,
        "readOnly": False,
        "crossRegionRestore": True,
    }


def test_self_names_the_one_project_a_read_only_project_key_reaches(
    client: ApiClient, make_key: Callable[..., Key]
) -> None:
    project_id = create_project(client, "scoped")
    scoped = client.as_key(make_key(project=project_id, read_only=True))
    identity = scoped.get("/self").get_json()
    assert (identity["scope"], identity["projectId"], identity["readOnly"]) == ("project", project_id, True)


def test_self_needs_a_key(app: Flask) -> None:
    response = app.test_client().get("/api/atlas/v1.0/self")
    assert response.status_code == 401 and response.get_json()["errorCode"] == "USER_UNAUTHORIZED"


def test_a_doubled_base_path_answers_404_with_a_code_that_names_no_resource(
    client: ApiClient, app: Flask
) -> None:
    create_project(client, "present")
    response = app.test_client().get("/api/atlas/v1.0/api/atlas/v1.0/groups")
    assert response.status_code == 404
    error = response.get_json()
    assert error["errorCode"] == "RESOURCE_NOT_FOUND"
    assert "/api/atlas/v1.0/api/atlas/v1.0/groups" in error["detail"]


def test_self_is_in_the_openapi_document(app: Flask) -> None:
    document = app.test_client().get("/api/atlas/v1.0/openapi.json").get_json()
    assert "get" in document["paths"]["/api/atlas/v1.0/self"]
