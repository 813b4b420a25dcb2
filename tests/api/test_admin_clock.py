"""/admin/clock: present only with a manual clock; advancing takes every slot passed before answering."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from shimkit import START, ApiClient, FlakyDriver, advance, create_cluster, create_project, enable_backup

from shim.app import create_app, shutdown
from shim.auth import create_key
from shim.clock import ManualClock, format_time
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


def test_a_project_key_cannot_move_the_clock(
    client: ApiClient, make_key: Callable[..., tuple[str, str]]
) -> None:
    project_id = create_project(client)
    project_client = client.as_key(make_key(project_id))
    response = project_client.post("/admin/clock", {"advanceSeconds": 86400})
    assert response.status_code == 403
    assert response.get_json()["errorCode"] == "ORG_API_KEY_REQUIRED"
    assert "organization key" in response.get_json()["detail"]
    assert client.get("/admin/clock").get_json() == {"now": format_time(START)}
    # Reading the clock is harmless: any key may.
    assert project_client.get("/admin/clock").get_json() == {"now": format_time(START)}


def test_an_advance_is_bounded_to_366_days_per_call(client: ApiClient) -> None:
    response = client.post("/admin/clock", {"advanceSeconds": 366 * 86400 + 1})
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "INVALID_ATTRIBUTE" and body["parameters"] == ["/advanceSeconds"]
    assert "31622400" in body["detail"]
    assert client.get("/admin/clock").get_json() == {"now": format_time(START)}
    assert advance(client, 366 * 86400) == format_time(START + timedelta(days=366))


def test_the_openapi_document_states_the_bound_of_an_advance(client: ApiClient) -> None:
    document = client.get("/openapi.json").get_json()
    text = json.dumps(document)
    assert '"maximum": 31622400' in text


class BlockingDriver(FlakyDriver):
    """Blocks the `block_at`-th snapshot start until released: an advance caught in the middle."""

    def __init__(self, inner: LocalDriver, block_at: int) -> None:
        super().__init__(inner)
        self.block_at = block_at
        self.reached = threading.Event()
        self.release = threading.Event()

    def start_snapshot(self, **kwargs: Any) -> str:
        token = super().start_snapshot(**kwargs)
        if len(self.started) == self.block_at:
            self.reached.set()
            assert self.release.wait(60)
        return token


@pytest.fixture
def two_shims(data_dir: Path) -> Iterator[tuple[ApiClient, ApiClient, BlockingDriver]]:
    """Two shim instances on one database (as two processes); the first's driver blocks its 3rd snapshot."""
    apps: list[Flask] = []
    drivers: list[BlockingDriver] = []

    def factory(config: Config) -> BlockingDriver:
        drivers.append(BlockingDriver(LocalDriver(config.data_dir, durable=False), block_at=3))
        return drivers[-1]

    for _ in range(2):
        apps.append(
            create_app(
                Config(
                    data_dir=data_dir,
                    clock=ManualClock(START),
                    manual_clock=True,
                    scheduler=False,
                    driver_factory=factory,
                )
            )
        )
    with apps[0].extensions["cloudbackup"].service.store.write() as session:
        key = create_key(session, project_id=None, read_only=False)
    yield ApiClient(apps[0].test_client(), key), ApiClient(apps[1].test_client(), key), drivers[0]
    for driver in drivers:
        driver.release.set()
    for app in apps:
        shutdown(app)


def test_a_second_advance_while_one_runs_is_refused_also_from_another_process_and_requests_go_through(
    two_shims: tuple[ApiClient, ApiClient, BlockingDriver],
) -> None:
    one, two, blocking = two_shims
    project_id = create_project(one)
    create_cluster(one, project_id)
    enable_backup(one, project_id)  # snapshot 1
    results: list[Any] = []
    running = threading.Thread(
        target=lambda: results.append(one.post("/admin/clock", {"advanceSeconds": 10 * 86400}))
    )
    running.start()
    try:
        assert blocking.reached.wait(60), "the advance never reached its third snapshot"
        # Mid-advance: another advance is refused, through this shim and through the other one.
        for client in (one.as_key(one.key), two):  # type: ignore[arg-type]
            refused = client.post("/admin/clock", {"advanceSeconds": 60})
            assert refused.status_code == 409, refused.get_json()
            assert refused.get_json()["errorCode"] == "CLOCK_ADVANCE_IN_PROGRESS"
            assert "Wait for it to answer" in refused.get_json()["detail"]
        # ...while other requests, writes too, are answered.
        other = two.post("/groups", {"name": "while-advancing"})
        assert other.status_code == 201, other.get_json()
    finally:
        blocking.release.set()
        running.join(60)
    assert results and results[0].status_code == 200, results and results[0].get_json()
    assert results[0].get_json()["now"] == format_time(START + timedelta(days=10))
    # Once it answered, the next advance is accepted.
    assert advance(two, 60)
