"""A captured Digest Authorization header cannot be replayed: each (nonce, nc) is accepted once, in every
process on the database, and qop=auth-int signs the body."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import requests
from flask import Flask
from requests.auth import HTTPDigestAuth
from shimkit import (
    BASE,
    ApiClient,
    create_cluster,
    create_project,
    digest_authorization,
    enable_backup,
    first_challenge,
    parse_challenge,
)
from sqlalchemy import select
from waitress.server import create_server

from shim.app import create_app, shutdown
from shim.config import Config
from shim.store.models import DigestNonceUse

Key = tuple[str, str]


def send(app: Flask, method: str, uri: str, header: str, body: object = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    response = app.test_client().open(
        uri,
        method=method,
        data=data,
        content_type="application/json" if data is not None else None,
        headers={"Authorization": header},
    )
    return response.status_code, response.get_json() or {}


@pytest.fixture
def backed_up(client: ApiClient) -> str:
    """A project whose cluster rs1 has backup on and one snapshot taken."""
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    return project_id


def snapshot_count(client: ApiClient, project_id: str) -> int:
    listing = client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots")
    assert listing.status_code == 200, listing.get_json()
    return listing.get_json()["totalCount"]


def test_a_captured_header_replayed_with_another_body_is_refused_and_changes_nothing(
    app: Flask, client: ApiClient, org_key: Key, backed_up: str
) -> None:
    uri = f"{BASE}/groups/{backed_up}/clusters/rs1"
    header = digest_authorization("PATCH", uri, *org_key, first_challenge(app), 1)
    status, _ = send(app, "PATCH", uri, header, {"diskSizeGB": 2})
    assert status == 200
    before = snapshot_count(client, backed_up)
    assert before >= 1

    status, error = send(app, "PATCH", uri, header, {"providerBackupEnabled": False})

    assert status == 401
    assert error["errorCode"] == "DIGEST_NONCE_REUSED"
    assert "already used" in error["detail"] and "nc=00000001" in error["detail"]
    cluster = client.get(f"/groups/{backed_up}/clusters/rs1").get_json()
    assert cluster["providerBackupEnabled"] is True
    assert snapshot_count(client, backed_up) == before


def test_a_replayed_post_of_a_snapshot_takes_no_second_snapshot(
    app: Flask, client: ApiClient, org_key: Key, backed_up: str
) -> None:
    before = snapshot_count(client, backed_up)
    uri = f"{BASE}/groups/{backed_up}/clusters/rs1/backup/snapshots"
    header = digest_authorization("POST", uri, *org_key, first_challenge(app), 1)
    assert send(app, "POST", uri, header, {"description": "once"})[0] in (200, 201, 202)

    status, error = send(app, "POST", uri, header, {"description": "once"})

    assert status == 401 and error["errorCode"] == "DIGEST_NONCE_REUSED"
    assert snapshot_count(client, backed_up) == before + 1


def test_the_refusal_of_a_replay_offers_a_fresh_nonce_that_the_key_holder_can_answer(
    app: Flask, org_key: Key
) -> None:
    uri = f"{BASE}/groups"
    header = digest_authorization("GET", uri, *org_key, first_challenge(app), 7)
    assert send(app, "GET", uri, header)[0] == 200
    response = app.test_client().get(uri, headers={"Authorization": header})
    assert response.status_code == 401
    fresh = response.headers.getlist("WWW-Authenticate")[0]
    assert "stale=true" in fresh
    again = digest_authorization("GET", uri, *org_key, parse_challenge(fresh), 1)
    assert send(app, "GET", uri, again)[0] == 200


def test_auth_int_signs_the_body_so_a_tampered_body_is_refused(
    app: Flask, client: ApiClient, org_key: Key, backed_up: str
) -> None:
    uri = f"{BASE}/groups/{backed_up}/clusters/rs1"
    signed = json.dumps({"diskSizeGB": 2}).encode()
    nonce = first_challenge(app)
    header = digest_authorization("PATCH", uri, *org_key, nonce, 1, qop="auth-int", body=signed)

    status, error = send(app, "PATCH", uri, header, {"providerBackupEnabled": False})

    assert status == 401 and error["errorCode"] == "USER_UNAUTHORIZED"
    assert client.get(f"/groups/{backed_up}/clusters/rs1").get_json()["providerBackupEnabled"] is True
    # The same signature over the body it was made for is accepted.
    header = digest_authorization("PATCH", uri, *org_key, nonce, 2, qop="auth-int", body=signed)
    status, cluster = send(app, "PATCH", uri, header, {"diskSizeGB": 2})
    assert status == 200 and cluster["diskSizeGB"] == 2


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app behind a real waitress server on a free loopback port."""
    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    server.close()
    thread.join(timeout=10)


def test_requests_digest_auth_counts_nc_up_and_works_across_many_requests(
    served: str, org_key: Key, client: ApiClient
) -> None:
    project_id = create_project(client)
    session = requests.Session()
    session.auth = HTTPDigestAuth(*org_key)
    statuses = [session.get(f"{served}{BASE}/groups/{project_id}", timeout=30).status_code for _ in range(60)]
    created = session.post(f"{served}{BASE}/groups", json={"name": "over-http"}, timeout=30)
    statuses.append(created.status_code)
    assert statuses == [200] * 60 + [201]
    # One nonce served every request: requests counted nc up instead of re-authenticating each time.
    assert session.auth._thread_local.nonce_count == 61  # type: ignore[attr-defined]


def test_two_shim_processes_on_one_database_do_not_accept_the_same_nonce_count(
    app: Flask, config: Config, org_key: Key, make_key: Callable[..., Key]
) -> None:
    other = create_app(replace(config, reconcile=False))
    try:
        uri = f"{BASE}/groups"
        header = digest_authorization("GET", uri, *org_key, first_challenge(app), 1)
        assert send(app, "GET", uri, header)[0] == 200
        status, error = send(other, "GET", uri, header)
        assert status == 401 and error["errorCode"] == "DIGEST_NONCE_REUSED"
        # A nonce the other process issued is good here, with its own counts.
        header = digest_authorization("GET", uri, *org_key, first_challenge(other), 1)
        assert send(app, "GET", uri, header)[0] == 200
        assert send(other, "GET", uri, header)[0] == 401
    finally:
        shutdown(other)


def test_used_nonce_counts_are_forgotten_once_their_nonce_expired(
    app: Flask, client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = app.extensions["cloudbackup"].service.store
    auth = app.extensions["cloudbackup"].auth

    def recorded() -> list[str]:
        with store.read() as session:
            return list(session.execute(select(DigestNonceUse.nonce)).scalars())

    for _ in range(5):
        assert client.get("/groups").status_code == 200
    old = set(recorded())
    assert len(recorded()) == 5 and len(old) == 1

    # Later than the nonce's lifetime and the margin for clocks of other processes.
    later = time.time() + auth.ttl + 120
    monkeypatch.setattr("shim.auth.time.time", lambda: later)
    assert client.get("/groups").status_code == 200  # answers the stale=true with a fresh nonce
    assert client.get("/groups").status_code == 200

    assert len(recorded()) == 2 and not old & set(recorded())
