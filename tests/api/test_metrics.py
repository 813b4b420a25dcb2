"""GET /metrics: Prometheus text that follows what the shim did, for organization keys and on its own port."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from shimkit import (
    ApiClient,
    FlakyDriver,
    advance,
    create_cluster,
    create_project,
    enable_backup,
    member_volumes,
)
from shimstorage import ShimStorage

from shim import metrics
from shim.clock import ManualClock

DAY = 86400
CLUSTERS = "/api/atlas/v1.0/groups/<group_id>/clusters"


def scrape(client: ApiClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value, read with prometheus_client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_follow_snapshots_failures_restores_freshness_and_requests(
    app: Flask, client: ApiClient, driver: FlakyDriver, clock: ManualClock, storage: ShimStorage
) -> None:
    before = scrape(client)
    assert value(before, "cloudbackup_snapshots_finished_total", status="completed") == 0
    assert value(before, "cloudbackup_scheduler_lag_seconds") == 0

    project_id = create_project(client)
    create_cluster(client, project_id)
    create_cluster(client, project_id, "target")
    storage.write(member_volumes(app, project_id, "rs1")[("eastus2", 0)], b"data" * 100_000)
    enable_backup(client, project_id)
    advance(client, 4 * DAY)  # four more daily snapshots; retention keeps the last three
    driver.fail_snapshots = 1
    failed = client.post(f"/groups/{project_id}/clusters/rs1/backup/snapshots", {"description": "x"})
    assert failed.get_json()["status"] == "failed"
    completed = client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["results"][1]
    restore = client.post(
        f"/groups/{project_id}/clusters/rs1/backup/restoreJobs",
        {"snapshotId": completed["id"], "targetClusterName": "target"},
    )
    assert restore.status_code == 201, restore.get_json()
    advance(client, 3600)

    after = scrape(client)
    assert value(after, "cloudbackup_snapshots_finished_total", status="completed") == 5
    assert value(after, "cloudbackup_snapshots_finished_total", status="failed") == 1
    assert value(after, "cloudbackup_snapshots", status="completed") == 3
    assert value(after, "cloudbackup_snapshots", status="failed") == 1
    assert value(after, "cloudbackup_failures_total", kind="snapshot", error_code="InternalDiskError") == 1
    assert value(after, "cloudbackup_restore_jobs", status="completed") == 1
    assert value(after, "cloudbackup_snapshot_duration_seconds_count") == 5
    assert value(after, "cloudbackup_snapshot_size_bytes_count") == 5
    assert value(after, "cloudbackup_snapshot_size_bytes_sum") >= 5 * 400_000
    # The newest completed snapshot was taken at the fourth day's slot, an hour ago.
    age = {"project_id": project_id, "project": "proj", "cluster": "rs1"}
    assert value(after, "cloudbackup_newest_snapshot_age_seconds", **age) == 3600
    assert (
        "cloudbackup_newest_snapshot_age_seconds",
        frozenset({**age, "cluster": "target"}.items()),
    ) not in after
    # Counted by route, not by path: both clusters' creations are one series.
    assert value(after, "cloudbackup_http_requests_total", method="POST", route=CLUSTERS, status="201") == 2
    assert value(after, "cloudbackup_http_request_duration_seconds_count", method="POST", route=CLUSTERS) == 2

    # A clock that moved without the schedule running (a stalled scheduler) shows as lag and staleness.
    clock.set(clock.now() + timedelta(days=1, hours=2))
    stalled = scrape(client)
    assert value(stalled, "cloudbackup_scheduler_lag_seconds") == 3 * 3600
    assert value(stalled, "cloudbackup_newest_snapshot_age_seconds", **age) == DAY + 3 * 3600


def test_metrics_on_the_api_port_need_an_organization_key(
    app: Flask, client: ApiClient, make_key: Callable[..., tuple[str, str]]
) -> None:
    project_id = create_project(client)
    anonymous = app.test_client().get("/metrics")
    assert anonymous.status_code == 401 and anonymous.get_json()["errorCode"] == "USER_UNAUTHORIZED"
    project_key = client.as_key(make_key(project=project_id)).get("/metrics")
    assert project_key.status_code == 403
    assert project_key.get_json()["errorCode"] == "ORG_API_KEY_REQUIRED"
    assert "--metrics-listen" in project_key.get_json()["detail"]
    assert client.as_key(make_key(read_only=True)).get("/metrics").status_code == 200


def test_the_metrics_listener_serves_the_same_metrics_without_a_key(app: Flask, client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    listener = metrics.Listener(app.extensions[metrics.EXTENSION], "127.0.0.1", 0)
    try:
        response = requests.get(listener.url, timeout=10)
    finally:
        listener.close()
    assert response.status_code == 200
    found = samples(response.text)
    assert value(found, "cloudbackup_snapshots", status="completed") == 1
    assert value(found, "cloudbackup_snapshots_finished_total", status="completed") == 1


def test_a_metrics_address_is_host_and_port_with_loopback_by_default() -> None:
    assert metrics.parse_listen("9464") == ("127.0.0.1", 9464)
    assert metrics.parse_listen(":9464") == ("127.0.0.1", 9464)
    assert metrics.parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert metrics.parse_listen("[::1]:9464") == ("::1", 9464)
