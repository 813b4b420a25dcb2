"""HTTP Digest authentication with API keys: 401s, stale nonces, read-only keys and project scope."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from shimkit import (
    ApiClient,
    create_cluster,
    create_project,
    digest_authorization,
    enable_backup,
    first_challenge,
    parse_challenge,
)

Key = tuple[str, str]


def test_a_request_without_credentials_gets_401_with_digest_challenges_and_the_error_shape(
    app: Flask,
) -> None:
    response = app.test_client().get("/api/atlas/v1.0/groups")
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"] == 401 and body["reason"] == "Unauthorized"
    assert body["errorCode"] == "USER_UNAUTHORIZED"
    assert "curl --digest" in body["detail"]
    values = response.headers.getlist("WWW-Authenticate")
    assert [parse_challenge(v)["algorithm"] for v in values] == ["MD5", "SHA-256"]
    assert all(
        parse_challenge(v)["qop"] == "auth,auth-int" and parse_challenge(v)["realm"] == "cloudbackup"
        for v in values
    )


def test_md5_and_sha256_digest_both_authenticate(app: Flask, org_key: Key) -> None:
    for algorithm in ("MD5", "SHA-256"):
        client = ApiClient(app.test_client(), org_key, algorithm)
        assert client.get("/groups").status_code == 200


def test_a_wrong_private_key_or_unknown_public_key_gets_401(app: Flask, org_key: Key) -> None:
    for key in ((org_key[0], "not-the-key"), ("nobodyxx", org_key[1])):
        response = ApiClient(app.test_client(), key).get("/groups")
        assert response.status_code == 401
        assert response.get_json()["errorCode"] == "USER_UNAUTHORIZED"


def test_a_response_signed_for_another_uri_is_refused(app: Flask, org_key: Key) -> None:
    header = digest_authorization("GET", "/api/atlas/v1.0/other", *org_key, first_challenge(app), 1)
    response = app.test_client().get("/api/atlas/v1.0/groups", headers={"Authorization": header})
    assert response.status_code == 401


def test_an_expired_nonce_is_answered_with_stale_true_and_a_fresh_one_works(app: Flask, org_key: Key) -> None:
    auth = app.extensions["cloudbackup"].auth
    old = dict(first_challenge(app), nonce=auth.make_nonce(issued=time.time() - 3600))
    header = digest_authorization("GET", "/api/atlas/v1.0/groups", *org_key, old, 1)
    response = app.test_client().get("/api/atlas/v1.0/groups", headers={"Authorization": header})
    assert response.status_code == 401
    fresh = response.headers.getlist("WWW-Authenticate")[0]
    assert "stale=true" in fresh
    header = digest_authorization("GET", "/api/atlas/v1.0/groups", *org_key, parse_challenge(fresh), 1)
    assert (
        app.test_client().get("/api/atlas/v1.0/groups", headers={"Authorization": header}).status_code == 200
    )


def test_a_forged_nonce_is_refused_without_stale(app: Flask, org_key: Key) -> None:
    forged = dict(first_challenge(app), nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    header = digest_authorization("GET", "/api/atlas/v1.0/groups", *org_key, forged, 1)
    response = app.test_client().get("/api/atlas/v1.0/groups", headers={"Authorization": header})
    assert response.status_code == 401
    assert "stale" not in response.headers.get("WWW-Authenticate", "")


def test_healthz_and_the_openapi_document_need_no_key(app: Flask) -> None:
    assert app.test_client().get("/healthz").get_json() == {"status": "ok", "driver": "local"}
    assert app.test_client().get("/api/atlas/v1.0/openapi.json").status_code == 200


def test_a_read_only_key_reads_but_every_write_gets_403(
    client: ApiClient, make_key: Callable[..., Key]
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    reader = client.as_key(make_key(read_only=True))
    assert reader.get(f"/groups/{project_id}/clusters/rs1").status_code == 200
    writes = [
        ("POST", "/groups", {"name": "x"}),
        ("DELETE", f"/groups/{project_id}", None),
        ("PUT", f"/groups/{project_id}/clusters/rs1/backup", {}),
        ("PATCH", f"/groups/{project_id}/clusters/rs1", {"diskSizeGB": 20}),
        ("DELETE", f"/groups/{project_id}/clusters/rs1", None),
        ("POST", f"/groups/{project_id}/clusters/rs1/backup/snapshots", {}),
    ]
    for method, path, body in writes:
        response = reader.request(method, path, body)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["errorCode"] == "READ_ONLY_API_KEY"
    assert client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()["enabled"] is False


def test_a_project_key_reaches_its_project_alone_and_others_look_absent(
    client: ApiClient, make_key: Callable[..., Key]
) -> None:
    mine = create_project(client, "mine")
    theirs = create_project(client, "theirs")
    create_cluster(client, theirs)
    scoped = client.as_key(make_key(project=mine))
    listing = scoped.get("/groups").get_json()
    assert [p["id"] for p in listing["results"]] == [mine] and listing["totalCount"] == 1
    assert scoped.get(f"/groups/{mine}").status_code == 200
    for path in (f"/groups/{theirs}", f"/groups/{theirs}/clusters", f"/groups/{theirs}/clusters/rs1/backup"):
        response = scoped.get(path)
        assert response.status_code == 404
        assert response.get_json()["errorCode"] == "GROUP_NOT_FOUND"
    assert scoped.delete(f"/groups/{theirs}").status_code == 404
    create_cluster(scoped, mine)


def test_a_project_key_cannot_create_projects(client: ApiClient, make_key: Callable[..., Key]) -> None:
    mine = create_project(client, "mine")
    response = client.as_key(make_key(project=mine)).post("/groups", {"name": "another"})
    assert response.status_code == 403
    assert response.get_json()["errorCode"] == "ORG_API_KEY_REQUIRED"
    assert client.get("/groups").get_json()["totalCount"] == 1


def test_a_project_key_cannot_restore_into_a_project_it_does_not_reach(
    client: ApiClient, make_key: Callable[..., Key]
) -> None:
    mine = create_project(client, "mine")
    theirs = create_project(client, "theirs")
    create_cluster(client, mine)
    create_cluster(client, theirs, "dst")
    enable_backup(client, mine)
    snapshot = client.get(f"/groups/{mine}/clusters/rs1/backup/snapshots").get_json()["results"][0]["id"]
    scoped = client.as_key(make_key(project=mine))
    response = scoped.post(
        f"/groups/{mine}/clusters/rs1/backup/restoreJobs",
        {"snapshotId": snapshot, "targetGroupId": theirs, "targetClusterName": "dst"},
    )
    assert response.status_code == 404
    assert response.get_json()["errorCode"] == "GROUP_NOT_FOUND"


@pytest.mark.databases("sqlite")  # reads the database file's bytes
def test_private_keys_are_not_stored_only_their_digest_hashes(
    app: Flask, org_key: Key, data_dir: Path
) -> None:
    raw = b"".join(p.read_bytes() for p in data_dir.glob("cloudbackup.db*"))
    assert org_key[0].encode() in raw
    assert org_key[1].encode() not in raw
