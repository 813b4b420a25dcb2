"""The status page as a person sees it: a real `serve`, a real headless Chromium speaking HTTP Digest."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth
from serveprocess import Serve, create_key
from shimkit import cluster_body

BASE = "/api/atlas/v1.0"
DAY = 86400
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a root user in a container: no sandbox, no GPU, nothing fetched from the network but the page.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (apt-get install -y chromium; scripts/test.sh installs it)"
)


def chromium(url: str, *action: str) -> str:
    """Run Chromium headless on `url` with a fresh profile; returns what it printed (the DOM)."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [CHROMIUM or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Page(HTMLParser):
    """What a reader sees: the text of each cluster card, and its table rows as lists of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.clusters: dict[str, dict[str, Any]] = {}
        self.banner = ""
        self._cluster: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_banner = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "article" and attributes.get("data-cluster"):
            self._cluster = attributes["data-cluster"]
            self.clusters[self._cluster or ""] = {"text": "", "snapshots": [], "classes": attributes["class"]}
        elif tag == "div" and attributes.get("id") == "failures":
            self._in_banner = True
        elif tag == "tr" and "snapshot" in (attributes.get("class") or "").split():
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._cluster = None
        elif tag == "div":
            self._in_banner = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._cluster:
            self.clusters[self._cluster]["snapshots"].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_banner:
            self.banner += data
        if self._cluster:
            self.clusters[self._cluster]["text"] += data
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture
def shim(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    serve = Serve(data_dir, "--manual-clock")
    yield serve.url, serve.process
    serve.stop(timeout=30)


def with_key(url: str, key: tuple[str, str]) -> str:
    return url.replace("http://", f"http://{key[0]}:{key[1]}@", 1) + "/"


def test_the_status_page_shows_clusters_retained_snapshots_and_a_failed_snapshot_in_chromium(
    data_dir: Path, shim: tuple[str, Any], tmp_path: Path
) -> None:
    url, _ = shim
    org_key = create_key(data_dir)
    session = requests.Session()
    session.auth = HTTPDigestAuth(*org_key)

    def call(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, url + BASE + path, json=body, timeout=60)
        assert response.status_code < 300, response.text
        return response.json()

    shop = call("POST", "/groups", {"name": "shop"})["id"]
    other = call("POST", "/groups", {"name": "analytics"})["id"]
    orders_id = call("POST", f"/groups/{shop}/clusters", cluster_body("orders"))["id"]
    billing = call("POST", f"/groups/{shop}/clusters", cluster_body("billing"))
    call("POST", f"/groups/{other}/clusters", cluster_body("reports"))
    with (data_dir / "volumes" / "eastus2" / shop / orders_id / "member-0.img").open("r+b") as volume:
        volume.write(b"order #1" * (512 * 1024))  # 4 MiB into the local driver's volume (a sparse file)
    for name in ("orders", "billing"):
        call("PUT", f"/groups/{shop}/clusters/{name}/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    call("POST", "/admin/clock", {"advanceSeconds": 4 * DAY})
    # billing's volume in its preferred region disappears: its next snapshot fails.
    shutil.rmtree(data_dir / "volumes" / "eastus2" / shop / billing["id"])
    failed = call(
        "POST", f"/groups/{shop}/clusters/billing/backup/snapshots", {"description": "before upgrade"}
    )
    assert failed["status"] == "failed"

    screenshot = tmp_path / "status-page.png"
    chromium(with_key(url, org_key), "--window-size=1280,1800", f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 10_000
    page = Page(chromium(with_key(url, org_key), "--dump-dom"))

    assert set(page.clusters) == {"orders", "billing", "reports"}
    orders = page.clusters["orders"]
    # Five daily snapshots were taken over four simulated days; the page shows the three retention keeps.
    assert [row[1:3] for row in orders["snapshots"]] == [["scheduled", "completed"]] * 3
    assert [row[4] for row in orders["snapshots"]] == ["0 s", "1 d 0 h", "2 d 0 h"]
    assert [row[5:] for row in orders["snapshots"]] == [["4.0 MiB", "eastus2"]] * 3
    assert "cloud provider snapshots" in orders["text"] and "failing" not in orders["classes"]
    billing_rows = page.clusters["billing"]["snapshots"]
    assert billing_rows[0][1] == "onDemand" and billing_rows[0][2].startswith("failed")
    assert "before upgrade" in billing_rows[0][0]
    assert "failing" in page.clusters["billing"]["classes"]
    assert page.banner.strip() == "1 cluster with failed snapshots or restores"
    assert "No snapshots." in page.clusters["reports"]["text"]

    # A project key sees its own project alone.
    project_key = create_key(data_dir, "--project", other)
    seen = Page(chromium(with_key(url, project_key), "--dump-dom"))
    assert set(seen.clusters) == {"reports"}
