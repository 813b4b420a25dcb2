"""/admin/clock: present only with a manual clock; advancing takes every slot passed before answering."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from shimkit import START, ApiClient, FlakyDriver, advance, create_cluster, create_project, enable_backup

from shim.app import create_app, shutdown
from shim.auth import create_key
from shim.clock import format_time
from shim.config import Config
from shim.drivers.local import LocalDriver


@pytest.fixture
def real_clock_client(tmp_path: Path) -> Iterator[ApiClient]:
    app = create_app(
        Config(
            data_dir=tmp_path, driver_factory=lambda c: FlakyDriver(LocalDriver(c.data_dir, durable=False))
        )
    )
    with app.extensions["cloudbackup"].service.store.write() as session:
        key = create_key(session, project_id=None, read_only=False)
    yield ApiClient(app.test_client(), key)
    shutdown(app)


def test_without_the_manual_clock_the_admin_clock_is_not_found(real_clock_client: ApiClient) -> None:
    for method in ("GET", "POST"):
        response = real_clock_client.request(
            method, "/admin/clock", {"advanceSeconds": 60} if method == "POST" else None
        )
        assert response.status_code == 404
        assert response.get_json()["errorCode"] == "RESOURCE_NOT_FOUND"


def test_the_manual_clock_is_read_and_advanced(client: ApiClient) -> None:
    assert client.get("/admin/clock").get_json() == {"now": format_time(START)}
    assert advance(client, 90) == format_time(START + timedelta(seconds=90))
    assert client.get("/admin/clock").get_json() == {"now": format_time(START + timedelta(seconds=90))}


def test_advancing_answers_only_once_every_slot_passed_is_taken_and_retention_applied(
    client: ApiClient, driver: FlakyDriver
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    advance(client, 10 * 86400)
    assert len(driver.started) == 11
    rows = client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["results"]
    assert [r["createdAt"] for r in rows] == [format_time(START + timedelta(days=d)) for d in (10, 9, 8)]


def test_the_scheduler_does_not_race_an_advance(app: Flask, client: ApiClient) -> None:
    service = app.extensions["cloudbackup"].service
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    with service.advance_lock:  # an advance in progress
        service.clock.set(START + timedelta(days=1))
        assert service.tick() == 0
    assert service.tick() == 1


def test_the_manual_clock_needs_a_key(app: Flask) -> None:
    assert app.test_client().get("/api/atlas/v1.0/admin/clock").status_code == 401


def test_the_manual_clock_cannot_go_back(client: ApiClient) -> None:
    response = client.post("/admin/clock", {"advanceSeconds": -1})
    assert response.status_code == 400
    assert client.get("/admin/clock").get_json() == {"now": format_time(START)}
