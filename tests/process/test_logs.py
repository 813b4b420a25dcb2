"""`cloudbackup serve` tells the operator what it does: access lines and lifecycle events, text or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from requests.auth import HTTPDigestAuth
from serveprocess import Serve as ServeProcess
from serveprocess import create_key
from shimkit import cluster_body

BASE = "/api/atlas/v1.0"
DAY = 86400


class Serve(ServeProcess):
    """A `cloudbackup serve --manual-clock` logging at INFO; `urls` holds the URLs it printed."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        super().__init__(data_dir, "--manual-clock", *extra, env={"CLOUDBACKUP_LOG_LEVEL": "INFO"})

    def stop_cleanly(self) -> list[str]:
        """SIGTERM, an exit code 0, then every line the process wrote on stderr."""
        code, err = self.stop(timeout=30)
        assert code == 0, err
        return err.splitlines()


def call(session: requests.Session, url: str, method: str, path: str, body: Any = None) -> Any:
    response = session.request(method, url + BASE + path, json=body, timeout=60)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


@pytest.fixture
def served(data_dir: Path) -> Any:
    started: list[Serve] = []
    yield lambda *extra: started.append(Serve(data_dir, *extra)) or started[-1]
    for serve in started:
        serve.kill()


def test_json_logs_record_every_request_and_lifecycle_change_and_never_a_secret(
    data_dir: Path, served: Any
) -> None:
    public_key, private_key = create_key(data_dir)
    shim = served("--log-format", "json", "--metrics-listen", "127.0.0.1:0")
    url = shim.urls["listening"]
    session = requests.Session()
    session.auth = HTTPDigestAuth(public_key, private_key)
    project = call(session, url, "POST", "/groups", {"name": "logged"})["id"]
    clusters = f"/groups/{project}/clusters"
    call(session, url, "POST", clusters, cluster_body())
    call(session, url, "PUT", f"{clusters}/rs1/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    on_demand = call(session, url, "POST", f"{clusters}/rs1/backup/snapshots", {"description": "d"})["id"]
    call(session, url, "POST", "/admin/clock", {"advanceSeconds": 4 * DAY})
    call(session, url, "POST", clusters, cluster_body("copy"))
    job = call(
        session,
        url,
        "POST",
        f"{clusters}/rs1/backup/restoreJobs",
        {"snapshotId": on_demand, "targetClusterName": "copy"},
    )["id"]
    call(session, url, "DELETE", f"{clusters}/rs1/backup/snapshots/{on_demand}")
    call(session, url, "DELETE", f"{clusters}/rs1/backup")
    assert requests.get(url + BASE + "/groups", timeout=10).status_code == 401
    scraped = requests.get(shim.urls["metrics"], timeout=10)
    assert scraped.status_code == 200
    finished = {
        tuple(sample.labels.values()): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name == "cloudbackup_snapshots_finished_total"
    }
    assert finished == {("completed",): 6}
    lines = shim.stop_cleanly()

    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    text = "\n".join(lines)
    assert private_key not in text
    assert "Digest " not in text and "response=" not in text and "authorization" not in text.lower()

    access = [r for r in records if r["logger"] == "shim.access"]
    assert {"method", "path", "status", "durationMs", "publicKey"} <= set(access[0])
    created = [r for r in access if r["method"] == "POST" and r["path"] == BASE + clusters]
    assert [(r["status"], r["publicKey"]) for r in created] == [(201, public_key)] * 2
    refused = [r for r in access if r["path"] == BASE + "/groups" and r["status"] == 401]
    assert refused and all(r["publicKey"] is None for r in refused)

    events = [r for r in records if "event" in r]
    names = [e["event"] for e in events]
    assert names.count("backup.enabled") == 1 and names.count("backup.disabled") == 1
    assert names.count("snapshot.queued") == names.count("snapshot.started") == 6
    completed = [e for e in events if e["event"] == "snapshot.completed"]
    assert len(completed) == 6
    assert all(e["cluster"] == "rs1" and e["bytes"] >= 0 and e["durationSeconds"] >= 0 for e in completed)
    assert {e["type"] for e in completed} == {"scheduled", "onDemand"}
    restores = [(e["event"], e.get("status")) for e in events if e.get("job") == job]
    assert restores == [("restore.started", None), ("restore.finished", "completed")]
    # Five scheduled snapshots over four days: retention deleted two, disabling backup the other three.
    retained = [sid for e in events if e["event"] == "retention.deleted" for sid in e["snapshots"]]
    assert len(retained) == 2
    deleted = [e for e in events if e["event"] == "snapshot.deleted"]
    assert [e["snapshots"] for e in deleted if e["why"] == "deleted by request"] == [[on_demand]]
    assert sum(len(e["snapshots"]) for e in deleted if e["why"] == "backup disabled") == 3


def test_text_logs_are_one_plain_line_per_request_and_event(data_dir: Path, served: Any) -> None:
    public_key, private_key = create_key(data_dir)
    shim = served()
    url = shim.urls["listening"]
    session = requests.Session()
    session.auth = HTTPDigestAuth(public_key, private_key)
    project = call(session, url, "POST", "/groups", {"name": "plain"})["id"]
    call(session, url, "POST", f"/groups/{project}/clusters", cluster_body())
    call(
        session, url, "PUT", f"/groups/{project}/clusters/rs1/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"}
    )
    lines = shim.stop_cleanly()
    assert not any(line.startswith("{") for line in lines)
    assert any(
        f"shim.access: POST {BASE}/groups 201 " in line and f"key={public_key}" in line for line in lines
    )
    assert any(
        "shim.events: snapshot.completed snapshot=" in line and "cluster=rs1" in line for line in lines
    )
    assert private_key not in "\n".join(lines)
