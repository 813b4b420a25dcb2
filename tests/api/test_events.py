"""Lifecycle events an operator reads in the log: what reconciliation found, as events and as metrics."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from shimkit import ApiClient, FlakyDriver, create_cluster, create_project, enable_backup, snapshot_handle

from shim import metrics


def events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict]]:
    return [(r.event, r.fields) for r in caplog.records if hasattr(r, "event")]  # type: ignore[attr-defined]


def test_a_snapshot_deleted_behind_the_shims_back_is_a_reconciliation_event_and_a_counted_finding(
    app: Flask, client: ApiClient, driver: FlakyDriver, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    first = enable_backup(client, project_id)
    snapshot_id = client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["results"][0][
        "id"
    ]
    assert first["method"] == "CLOUD_PROVIDER_SNAPSHOTS"
    driver.inner.delete_snapshot(snapshot_handle(app, snapshot_id))
    caplog.set_level(logging.INFO, logger="shim.events")
    app.extensions["cloudbackup"].service.reconcile_storage()

    assert ("reconcile.finding", {"finding": "snapshot vanished", "snapshot": snapshot_id}) in events(caplog)
    text = metrics_text(app)
    found = {
        s.labels["finding"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "cloudbackup_reconcile_findings_total"
    }
    assert found == {"snapshot vanished": 1}


def test_enabling_and_disabling_backup_are_events_with_the_cluster_and_method(
    client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    caplog.set_level(logging.INFO, logger="shim.events")
    enable_backup(client, project_id)
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code in (200, 202, 204)
    seen = [(name, fields.get("cluster"), fields.get("method")) for name, fields in events(caplog)]
    assert ("backup.enabled", "rs1", "CLOUD_PROVIDER_SNAPSHOTS") in seen
    assert ("backup.disabled", "rs1", "CLOUD_PROVIDER_SNAPSHOTS") in seen
    assert seen.index(("backup.enabled", "rs1", "CLOUD_PROVIDER_SNAPSHOTS")) < seen.index(
        ("backup.disabled", "rs1", "CLOUD_PROVIDER_SNAPSHOTS")
    )


def metrics_text(app: Flask) -> str:
    return app.extensions[metrics.EXTENSION].exposition().decode()
