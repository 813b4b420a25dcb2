"""`cloudbackup serve` as a real process: HTTP Digest over the wire, clean stops, a crash mid-snapshot."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth
from serveprocess import Serve, cloudbackup, create_key
from shimkit import all_stored_ids, cluster_body

BASE = "/api/atlas/v1.0"


# One serve process for every test here (and the other process tests, which import it from this module).
Shim = Serve


class Api:
    def __init__(self, shim: Shim, key: tuple[str, str]) -> None:
        self.shim, self.session = shim, requests.Session()
        self.session.auth = HTTPDigestAuth(*key)

    def __call__(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = self.session.request(method, self.shim.url + BASE + path, json=body, timeout=60)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None


@pytest.fixture
def shims() -> Iterator[list[Shim]]:
    started: list[Shim] = []
    yield started
    for shim in started:
        if shim.process.poll() is None:
            shim.kill()


def test_serve_answers_http_digest_and_stops_cleanly_on_sigterm(data_dir: Path, shims: list[Shim]) -> None:
    key = create_key(data_dir)
    shim = Shim(data_dir, "--manual-clock")
    shims.append(shim)
    assert requests.get(shim.url + "/healthz", timeout=10).json()["status"] == "ok"
    unauthenticated = requests.get(shim.url + BASE + "/groups", timeout=10)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["errorCode"] == "USER_UNAUTHORIZED"
    assert "Digest" in unauthenticated.headers["WWW-Authenticate"]
    api = Api(shim, key)
    project = api("POST", "/groups", {"name": "over-the-wire"}, expect=201)
    api("POST", f"/groups/{project['id']}/clusters", cluster_body(), expect=201)
    backup = api(
        "PUT",
        f"/groups/{project['id']}/clusters/rs1/backup",
        {"method": "CLOUD_PROVIDER_SNAPSHOTS"},
        expect=200,
    )
    assert len(backup["snapshotIds"]) == 1
    api("POST", "/admin/clock", {"advanceSeconds": 4 * 86400}, expect=200)
    listing = api("GET", f"/groups/{project['id']}/clusters/rs1/backup/snapshots", expect=200)
    assert listing["totalCount"] == 3
    page = api(
        "GET", f"/groups/{project['id']}/clusters/rs1/backup/snapshots?itemsPerPage=2&pageNum=2", expect=200
    )
    assert [s["id"] for s in page["results"]] == [listing["results"][2]["id"]]
    assert all_stored_ids(data_dir) == {s["id"] for s in listing["results"]}
    code, log = shim.stop(signal.SIGTERM)
    assert code == 0, log
    assert "stopped" in log


def test_serve_stops_cleanly_on_sigint_and_keeps_its_manual_clock(data_dir: Path, shims: list[Shim]) -> None:
    key = create_key(data_dir)
    shim = Shim(data_dir, "--manual-clock")
    shims.append(shim)
    now = Api(shim, key)("POST", "/admin/clock", {"advanceSeconds": 3600}, expect=200)["now"]
    assert shim.stop(signal.SIGINT)[0] == 0
    again = Shim(data_dir, "--manual-clock")
    shims.append(again)
    assert Api(again, key)("GET", "/admin/clock", expect=200)["now"] == now
    assert again.stop()[0] == 0


def test_a_project_key_from_the_cli_reaches_its_project_alone(data_dir: Path, shims: list[Shim]) -> None:
    org = create_key(data_dir)
    shim = Shim(data_dir)
    shims.append(shim)
    api = Api(shim, org)
    mine = api("POST", "/groups", {"name": "mine"}, expect=201)["id"]
    theirs = api("POST", "/groups", {"name": "theirs"}, expect=201)["id"]
    scoped = Api(shim, create_key(data_dir, "--project", mine))
    assert [p["id"] for p in scoped("GET", "/groups", expect=200)["results"]] == [mine]
    assert scoped("GET", f"/groups/{theirs}", expect=404)["errorCode"] == "GROUP_NOT_FOUND"
    reader = Api(shim, create_key(data_dir, "--read-only"))
    assert reader("POST", "/groups", {"name": "x"}, expect=403)["errorCode"] == "READ_ONLY_API_KEY"
    # No --manual-clock: no such route.
    assert Api(shim, org)("GET", "/admin/clock", expect=404)["errorCode"] == "RESOURCE_NOT_FOUND"
    assert shim.stop()[0] == 0


def test_keys_create_refuses_an_unknown_project(data_dir: Path) -> None:
    result = subprocess.run(
        [
            *cloudbackup(),
            "keys",
            "create",
            "--data-dir",
            str(data_dir),
            "--project",
            "0123456789abcdef01234567",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "no project" in result.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_digest_works_as_with_atlas(data_dir: Path, shims: list[Shim]) -> None:
    public, private = create_key(data_dir)
    shim = Shim(data_dir)
    shims.append(shim)
    result = subprocess.run(
        ["curl", "-sS", "--fail", "--digest", "-u", f"{public}:{private}", shim.url + BASE + "/groups"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"results": [], "totalCount": 0}
    assert shim.stop()[0] == 0


def snapshot_rows(data_dir: Path) -> list[tuple[str, str]]:
    import sqlite3

    with sqlite3.connect(data_dir / "cloudbackup.db") as db:
        return sorted(db.execute("SELECT id, status FROM snapshots").fetchall())


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_kill_9_mid_snapshot_loses_no_row_leaves_none_stuck_and_no_file_without_a_row(
    data_dir: Path, shims: list[Shim], when: str
) -> None:
    key = create_key(data_dir)
    shim = Shim(data_dir, "--manual-clock", env={"CLOUDBACKUP_TEST_SNAPSHOT_DELAY": f"{when}:60"})
    shims.append(shim)
    api = Api(shim, key)
    project = api("POST", "/groups", {"name": "crash"}, expect=201)["id"]
    api("POST", f"/groups/{project}/clusters", cluster_body(), expect=201)

    def enable() -> None:
        with contextlib.suppress(requests.ConnectionError):  # the process dies under it
            Api(shim, key)("PUT", f"/groups/{project}/clusters/rs1/backup", {})

    hanging = threading.Thread(target=enable, daemon=True)
    hanging.start()
    deadline = time.monotonic() + 30
    # Wait for the window: the intent is committed (a queued row); with "after" the copy is in storage too.
    while time.monotonic() < deadline:
        rows = snapshot_rows(data_dir)
        if rows and (when == "before" or all_stored_ids(data_dir)):
            break
        time.sleep(0.05)
    assert [status for _, status in snapshot_rows(data_dir)] == ["queued"]
    shim.kill()
    restarted = Shim(data_dir, "--manual-clock")
    shims.append(restarted)
    rows = snapshot_rows(data_dir)
    assert [status for _, status in rows] == ["completed"]
    assert all_stored_ids(data_dir) == {sid for sid, _ in rows}
    listing = Api(restarted, key)("GET", f"/groups/{project}/clusters/rs1/backup/snapshots", expect=200)
    assert [s["status"] for s in listing["results"]] == ["completed"]
    assert restarted.stop()[0] == 0
