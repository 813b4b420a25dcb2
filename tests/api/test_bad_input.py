"""Bad input gets a 4xx naming the field at fault, and changes nothing in the database or in storage."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from shimkit import ApiClient, cluster_body, create_cluster, create_project, enable_backup
from sqlalchemy import event, select

from shim.store.models import Base


def everything(app: Flask, data_dir: Path) -> tuple[dict[str, list[tuple]], dict[str, tuple[int, int]]]:
    """Every row of every table, and every file of storage with its size and modification time."""
    store = app.extensions["cloudbackup"].service.store
    with store.read() as session:
        # Digest's record of used (nonce, nc) pairs grows with every request, bad or not: not data.
        rows = {
            table.name: sorted(map(tuple, session.execute(select(table)).all()), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name != "digest_nonce_uses"
        }
    files = {
        str(path.relative_to(data_dir)): (path.stat().st_size, path.stat().st_mtime_ns)
        for area in ("volumes", "snapshots")
        for path in (data_dir / area).rglob("*")
        if path.is_file()
    }
    return rows, files


@pytest.fixture
def world(client: ApiClient) -> str:
    """A project with a backed-up cluster: something a bad request could damage."""
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    return project_id


def cluster_with(**changes: Any) -> dict[str, Any]:
    return {**cluster_body("new"), **changes}


def regions(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"regionsConfig": config}]


CLUSTER_CASES = [
    ("a wrong type", cluster_with(diskSizeGB="10"), "INVALID_ATTRIBUTE", "/diskSizeGB"),
    ("an unknown field", cluster_with(backupPolicy="daily"), "INVALID_ATTRIBUTE", "/backupPolicy"),
    (
        "an unknown nested field",
        cluster_with(providerSettings={"providerName": "AZURE", "instanceSizeName": "M10", "region": "x"}),
        "INVALID_ATTRIBUTE",
        "/providerSettings/region",
    ),
    (
        "a missing field",
        {k: v for k, v in cluster_with().items() if k != "providerSettings"},
        "INVALID_ATTRIBUTE",
        "/providerSettings",
    ),
    ("a name starting with a hyphen", cluster_with(name="-bad"), "INVALID_ATTRIBUTE", "/name"),
    ("a name with a space", cluster_with(name="my cluster"), "INVALID_ATTRIBUTE", "/name"),
    ("a name of 65 characters", cluster_with(name="a" * 65), "INVALID_ATTRIBUTE", "/name"),
    (
        "an unknown tier",
        cluster_with(providerSettings={"providerName": "AZURE", "instanceSizeName": "M15"}),
        "INVALID_ATTRIBUTE",
        "/providerSettings/instanceSizeName",
    ),
    (
        "a region that is not Azure's",
        cluster_with(replicationSpecs=regions({"us-east-1": {}})),
        "INVALID_REGION",
        "/replicationSpecs/0/regionsConfig/us-east-1",
    ),
    (
        "a region name with a space",
        cluster_with(replicationSpecs=regions({"east us": {}})),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs/0/regionsConfig/east us",
    ),
    (
        "priority 0",
        cluster_with(replicationSpecs=regions({"eastus2": {"priority": 0}})),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs/0/regionsConfig/eastus2/priority",
    ),
    (
        "priority 8",
        cluster_with(replicationSpecs=regions({"eastus2": {"priority": 8}})),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs/0/regionsConfig/eastus2/priority",
    ),
    (
        "no preferred region",
        cluster_with(replicationSpecs=regions({"eastus2": {"priority": 6}, "westus2": {"priority": 5}})),
        "INVALID_REGION_PRIORITY",
        "/replicationSpecs/0/regionsConfig",
    ),
    (
        "two preferred regions",
        cluster_with(replicationSpecs=regions({"eastus2": {"priority": 7}, "westus2": {"priority": 7}})),
        "INVALID_REGION_PRIORITY",
        "/replicationSpecs/0/regionsConfig",
    ),
    (
        "two regions sharing a priority",
        cluster_with(
            replicationSpecs=regions({"eastus2": {}, "westus2": {"priority": 5}, "uksouth": {"priority": 5}})
        ),
        "INVALID_REGION_PRIORITY",
        "/replicationSpecs/0/regionsConfig",
    ),
    (
        "no region",
        cluster_with(replicationSpecs=regions({})),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs/0/regionsConfig",
    ),
    (
        "two replication specs",
        cluster_with(replicationSpecs=regions({"eastus2": {}}) * 2),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs",
    ),
    (
        "zero members",
        cluster_with(replicationSpecs=regions({"eastus2": {"electableNodes": 0}})),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs/0/regionsConfig/eastus2/electableNodes",
    ),
    ("a disk of 0 GiB", cluster_with(diskSizeGB=0), "INVALID_ATTRIBUTE", "/diskSizeGB"),
    ("a duplicate name", cluster_with(name="rs1"), "DUPLICATE_CLUSTER_NAME", "/name"),
    ("a name ending in a newline", cluster_with(name="abc\n"), "INVALID_ATTRIBUTE", "/name"),
    (
        "a region ending in a newline",
        cluster_with(replicationSpecs=regions({"eastus2\n": {}})),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs/0/regionsConfig/eastus2\n",
    ),
    (
        "an AWS region that AWS does not have",
        cluster_with(
            providerSettings={"providerName": "AWS", "instanceSizeName": "M10"},
            replicationSpecs=regions({"_": {}}),
        ),
        "INVALID_REGION",
        "/replicationSpecs/0/regionsConfig/_",
    ),
    (
        "an AWS region ending in a newline",
        cluster_with(
            providerSettings={"providerName": "AWS", "instanceSizeName": "M10"},
            replicationSpecs=regions({"us-east-1\n": {}}),
        ),
        "INVALID_ATTRIBUTE",
        "/replicationSpecs/0/regionsConfig/us-east-1\n",
    ),
    (
        "a Google Cloud region that Google Cloud does not have",
        cluster_with(
            providerSettings={"providerName": "GCP", "instanceSizeName": "M10"},
            replicationSpecs=regions({"_": {}}),
        ),
        "INVALID_REGION",
        "/replicationSpecs/0/regionsConfig/_",
    ),
]


@pytest.mark.parametrize(("case", "body", "code", "field"), CLUSTER_CASES, ids=[c[0] for c in CLUSTER_CASES])
def test_a_bad_cluster_is_refused_naming_the_field_and_nothing_changes(
    client: ApiClient,
    app: Flask,
    data_dir: Path,
    world: str,
    case: str,
    body: dict[str, Any],
    code: str,
    field: str,
) -> None:
    before = everything(app, data_dir)
    response = client.post(f"/groups/{world}/clusters", body)
    assert 400 <= response.status_code < 500
    error = response.get_json()
    assert error["errorCode"] == code, error
    assert error["parameters"][0] == field, error
    assert error["error"] == response.status_code and error["reason"]
    if code == "INVALID_ATTRIBUTE":
        assert field in error["detail"]
    assert everything(app, data_dir) == before


def test_a_region_that_is_not_azures_gets_a_suggestion(client: ApiClient, world: str) -> None:
    response = client.post(
        f"/groups/{world}/clusters", cluster_with(replicationSpecs=regions({"eastus3": {}}))
    )
    assert "Did you mean 'eastus" in response.get_json()["detail"]


def raw(client: ApiClient, method: str, path: str, data: bytes, content_type: str | None) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return client.request(method, path, data=data, headers=headers)


MALFORMED = [
    ("not JSON", b'{"name": ', "application/json"),
    ("a JSON array", b"[1, 2]", "application/json"),
    ("a JSON string", b'"rs1"', "application/json"),
    ("JSON sent as text/plain", json.dumps(cluster_with()).encode(), "text/plain"),
    ("JSON sent as a form", json.dumps(cluster_with()).encode(), "application/x-www-form-urlencoded"),
    ("a duplicate key", b'{"name": "a", "name": "b", "providerSettings": {}}', "application/json"),
]


@pytest.mark.parametrize(("case", "data", "content_type"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_body_that_is_not_a_json_object_is_a_malformed_request_and_nothing_changes(
    client: ApiClient, app: Flask, data_dir: Path, world: str, case: str, data: bytes, content_type: str
) -> None:
    before = everything(app, data_dir)
    response = raw(client, "POST", f"/groups/{world}/clusters", data, content_type)
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "MALFORMED_REQUEST"
    assert everything(app, data_dir) == before


def test_a_region_listed_twice_is_refused(client: ApiClient, app: Flask, data_dir: Path, world: str) -> None:
    before = everything(app, data_dir)
    text = json.dumps(cluster_with(replicationSpecs=regions({"eastus2": {}}))).replace(
        '"eastus2": {}', '"eastus2": {}, "eastus2": {"priority": 6}'
    )
    response = raw(client, "POST", f"/groups/{world}/clusters", text.encode(), "application/json")
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "INVALID_REGION"
    assert "listed twice" in body["detail"]
    assert body["parameters"] == ["/replicationSpecs/0/regionsConfig/eastus2"]
    assert everything(app, data_dir) == before


OTHER_CASES = [
    ("POST", "/groups", {"name": ""}, "INVALID_ATTRIBUTE", "/name"),
    ("POST", "/groups", {"name": "ok", "orgId": "x"}, "INVALID_ATTRIBUTE", "/orgId"),
    ("POST", "/groups", {"name": "proj"}, "DUPLICATE_PROJECT_NAME", "/name"),
    ("POST", "/groups", {"name": "proj\n"}, "INVALID_ATTRIBUTE", "/name"),
    ("PATCH", "/groups/{p}/clusters/rs1", {}, "INVALID_ATTRIBUTE", "/"),
    ("PATCH", "/groups/{p}/clusters/rs1", {"name": "renamed"}, "INVALID_ATTRIBUTE", "/name"),
    ("PATCH", "/groups/{p}/clusters/rs1", {"diskSizeGB": -1}, "INVALID_ATTRIBUTE", "/diskSizeGB"),
    (
        "PATCH",
        "/groups/{p}/clusters/rs1",
        {"replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 6}}}]},
        "INVALID_REGION_PRIORITY",
        "/replicationSpecs/0/regionsConfig",
    ),
    ("PUT", "/groups/{p}/clusters/rs1/backup", {"method": "DAILY"}, "INVALID_ATTRIBUTE", "/method"),
    (
        "POST",
        "/groups/{p}/clusters/rs1/backup/snapshots",
        {"description": "x" * 257},
        "INVALID_ATTRIBUTE",
        "/description",
    ),
    (
        "POST",
        "/groups/{p}/clusters/rs1/backup/snapshots",
        {"retentionDays": 3},
        "INVALID_ATTRIBUTE",
        "/retentionDays",
    ),
    (
        "POST",
        "/groups/{p}/clusters/rs1/backup/restoreJobs",
        {"targetClusterName": "rs1"},
        "INVALID_ATTRIBUTE",
        "/snapshotId",
    ),
    (
        "POST",
        "/groups/{p}/clusters/rs1/backup/restoreJobs",
        {"snapshotId": "xyz", "targetClusterName": "rs1"},
        "INVALID_ATTRIBUTE",
        "/snapshotId",
    ),
    (
        "POST",
        "/groups/{p}/clusters/rs1/backup/restoreJobs",
        {"snapshotId": "0123456789abcdef01234567", "targetClusterName": "rs1", "deliveryType": "download"},
        "INVALID_ATTRIBUTE",
        "/deliveryType",
    ),
    ("POST", "/groups/{p}/clusters/nope/backup/snapshots", {}, "CLUSTER_NOT_FOUND", None),
    (
        "DELETE",
        "/groups/{p}/clusters/rs1/backup/snapshots/0123456789abcdef01234567",
        None,
        "SNAPSHOT_NOT_FOUND",
        None,
    ),
    ("DELETE", "/groups/0123456789abcdef01234567/clusters/rs1", None, "GROUP_NOT_FOUND", None),
    ("DELETE", "/groups/{p}", None, "CANNOT_DELETE_GROUP_WITH_CLUSTERS", None),
    ("POST", "/admin/clock", {"advanceSeconds": -5}, "INVALID_ATTRIBUTE", "/advanceSeconds"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "field"),
    OTHER_CASES,
    ids=[f"{c[0]} {c[1]} {c[3]}" for c in OTHER_CASES],
)
def test_other_bad_requests_are_refused_and_change_nothing(
    client: ApiClient,
    app: Flask,
    data_dir: Path,
    world: str,
    method: str,
    path: str,
    body: Any,
    code: str,
    field: str | None,
) -> None:
    before = everything(app, data_dir)
    response = client.request(method, path.format(p=world), body)
    assert 400 <= response.status_code < 500
    error = response.get_json()
    assert error["errorCode"] == code, error
    if field is not None:
        assert error["parameters"][0] == field
    assert everything(app, data_dir) == before


def test_unknown_paths_and_methods_answer_json_not_html(client: ApiClient, app: Flask) -> None:
    missing = app.test_client().get("/nothing/here")
    assert missing.status_code == 404 and missing.is_json
    assert missing.get_json()["errorCode"] == "RESOURCE_NOT_FOUND"
    wrong = client.request("PATCH", "/groups")
    assert wrong.status_code == 405 and wrong.is_json
    assert wrong.get_json()["errorCode"] == "METHOD_NOT_ALLOWED"
    assert "GET" in wrong.headers["Allow"]


def test_an_unexpected_failure_answers_json_500_without_details(
    client: ApiClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.extensions["cloudbackup"].service, "list_projects", broken)
    response = client.get("/groups")
    assert response.status_code == 500 and response.is_json
    body = response.get_json()
    assert body["errorCode"] == "UNEXPECTED_ERROR" and "secret" not in body["detail"]


def test_json_nested_990_levels_is_a_malformed_request_not_a_server_error(
    client: ApiClient, app: Flask, data_dir: Path, world: str
) -> None:
    before = everything(app, data_dir)
    for depth in (990, 100_000):
        nested = b'{"name": ' + b"[" * depth + b"]" * depth + b"}"
        response = raw(client, "POST", f"/groups/{world}/clusters", nested, "application/json")
        assert response.status_code == 400, response.get_json()
        error = response.get_json()
        assert error["errorCode"] == "MALFORMED_REQUEST" and "nested" in error["detail"]
    assert everything(app, data_dir) == before


@pytest.mark.parametrize("slash", ["%2f", "%2F"])
def test_an_encoded_slash_in_a_path_segment_is_refused_and_never_splits_the_path(
    client: ApiClient, app: Flask, data_dir: Path, world: str, slash: str
) -> None:
    before = everything(app, data_dir)
    response = client.delete(f"/groups/{world}/clusters/rs1{slash}backup")
    assert response.status_code == 400
    error = response.get_json()
    assert error["errorCode"] == "MALFORMED_REQUEST" and "%2F" in error["detail"]
    assert client.get(f"/groups/{world}/clusters/rs1").get_json()["providerBackupEnabled"] is True
    assert everything(app, data_dir) == before


@pytest.fixture
def full_database(app: Flask, data_dir: Path) -> Callable[[], None]:
    """Makes the SQLite database full, as a full disk would: it may not grow by one page more, and a
    ballast table (no table of the shim's) has taken every free page."""
    store = app.extensions["cloudbackup"].service.store

    def cap(dbapi_connection: Any, _record: Any = None) -> None:
        cursor = dbapi_connection.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count={pages}")
        cursor.close()

    def fill() -> None:
        event.listen(store.engine, "connect", cap)
        store.engine.dispose()
        ballast = sqlite3.connect(data_dir / "cloudbackup.db", isolation_level=None)
        ballast.execute("CREATE TABLE ballast (data BLOB)")
        cap(ballast)
        for size in (4000, 400, 40):
            try:
                while True:
                    ballast.execute("INSERT INTO ballast VALUES (?)", (os.urandom(size),))
            except sqlite3.OperationalError as error:
                assert "full" in str(error)
        ballast.close()

    return fill


@pytest.mark.databases("sqlite")  # fills the database with SQLite's max_page_count
def test_a_full_database_answers_507_insufficient_storage_and_changes_nothing(
    client: ApiClient, app: Flask, data_dir: Path, world: str, full_database: Callable[[], None]
) -> None:
    full_database()
    # Each cluster takes room in the database; one of them meets the full disk, whichever write that is.
    for number in range(400):
        before = everything(app, data_dir)
        body = cluster_with(name=f"c{number}", replicationSpecs=regions({"eastus2": {"electableNodes": 1}}))
        response = client.post(f"/groups/{world}/clusters", body)
        if response.status_code != 201:
            break
    assert response.status_code == 507, response.get_json()
    error = response.get_json()
    assert error["errorCode"] == "INSUFFICIENT_STORAGE"
    assert "full" in error["detail"]
    assert everything(app, data_dir) == before


def test_a_body_over_one_mib_is_refused_with_413_before_it_is_read(
    client: ApiClient, app: Flask, data_dir: Path, world: str
) -> None:
    before = everything(app, data_dir)
    huge = json.dumps({"description": "x" * (2 * 1024 * 1024)}).encode()
    response = raw(client, "POST", f"/groups/{world}/clusters/rs1/backup/snapshots", huge, "application/json")
    assert response.status_code == 413
    assert response.get_json()["errorCode"] == "MALFORMED_REQUEST"
    assert "too large" in response.get_json()["detail"]
    assert everything(app, data_dir) == before
