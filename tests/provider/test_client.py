"""The provider's API client against a real shim: round trips a plugin start saves, and what it reads."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from shimkit import ApiClient, create_cluster, create_project, enable_backup, settle
from waitress.server import create_server

from provider.client import Client
from provider.runtime import tls


class Recorder:
    """The shim's WSGI app, recording each request: (method, path with query, status, client port)."""

    def __init__(self, app: Flask, rewrite: Callable[[dict], None] | None = None) -> None:
        self.app = app
        self.rewrite = rewrite
        self.seen: list[tuple[str, str, int, int]] = []
        # The (nonce, nc) each Digest-signed request carried.
        self.counts: list[tuple[str, str]] = []

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if self.rewrite is not None:
            self.rewrite(environ)
        path = environ["PATH_INFO"] + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
        signed = dict(re.findall(r'(\w+)="?([^",]*)"?', environ.get("HTTP_AUTHORIZATION", "")))
        if "nonce" in signed and "nc" in signed:
            self.counts.append((signed["nonce"], signed["nc"]))

        def record(status: str, headers: list, *args: Any) -> Any:
            self.seen.append((environ["REQUEST_METHOD"], path, int(status[:3]), int(environ["REMOTE_PORT"])))
            return start_response(status, headers, *args)

        return self.app(environ, record)


@contextmanager
def serving(recorder: Recorder) -> Iterator[str]:
    """The app on waitress, as `cloudbackup serve` runs it (kept-alive connections included)."""
    server = create_server(recorder, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # The loop thread is a daemon: closing the server is enough for the test's needs.
        server.close()


@pytest.fixture
def served(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Recorder]]:
    monkeypatch.setenv(tls.CACHE_ENV, str(tmp_path / "cache"))
    recorder = Recorder(app)
    with serving(recorder) as url:
        yield url, recorder


def test_a_later_plugin_start_reuses_the_saved_digest_challenge(
    served: tuple[str, Recorder], org_key: tuple[str, str]
) -> None:
    url, recorder = served
    Client(url, *org_key).get("/groups")
    assert [status for *_, status, _ in recorder.seen] == [401, 200]
    recorder.seen.clear()
    Client(url, *org_key).get("/groups")
    assert [status for *_, status, _ in recorder.seen] == [200]


def test_plugin_starts_sharing_a_saved_challenge_never_send_a_nonce_count_twice(
    served: tuple[str, Recorder], org_key: tuple[str, str]
) -> None:
    url, recorder = served
    Client(url, *org_key).get("/groups")
    recorder.seen.clear()
    recorder.counts.clear()
    # Each plugin process answers the same saved nonce; the shim accepts each (nonce, nc) once, so a
    # count reused by a later process would cost it a 401 and a new challenge.
    clients = [Client(url, *org_key) for _ in range(6)]
    for _ in range(3):
        for client in clients:
            client.request("GET", "/groups")
    assert len(recorder.counts) >= 18
    assert len(set(recorder.counts)) == len(recorder.counts), "a (nonce, nc) pair was sent twice"
    # Every call succeeded; a 401 may only come from a nonce that went stale on a loaded machine.
    assert [status for *_, status, _ in recorder.seen].count(200) == 18


def test_a_stale_saved_challenge_costs_one_round_trip_not_an_error(
    served: tuple[str, Recorder], org_key: tuple[str, str]
) -> None:
    url, recorder = served
    client = Client(url, *org_key)
    client.get("/groups")
    path = Path(client._challenge_file())
    realm, _nonce, *rest = path.read_text().split("\n")
    path.write_text("\n".join([realm, "a-nonce-the-shim-never-signed", *rest]))
    recorder.seen.clear()
    assert Client(url, *org_key).get("/groups")["totalCount"] >= 0
    assert [status for *_, status, _ in recorder.seen] == [401, 200]


def test_calls_on_many_threads_share_a_few_kept_alive_connections(
    served: tuple[str, Recorder], org_key: tuple[str, str]
) -> None:
    url, recorder = served
    client = Client(url, *org_key)
    client.get("/groups")
    for _ in range(20):
        # Terraform's calls each run on a thread of their own.
        thread = threading.Thread(target=client.get, args=("/groups",))
        thread.start()
        thread.join()
    assert len({port for *_, port in recorder.seen}) == 1


def test_every_cluster_and_backup_of_a_project_is_read_with_one_request(
    served: tuple[str, Recorder], org_key: tuple[str, str], client: ApiClient
) -> None:
    url, recorder = served
    project_id = create_project(client)
    for name in ("a", "b", "c"):
        create_cluster(client, project_id, name)
    enable_backup(client, project_id, "b")
    settle(client)
    api = Client(url, *org_key)
    api.get("/groups")
    recorder.seen.clear()
    backups = {name: api.backup(project_id, name) for name in ("a", "b", "c")}
    clusters = {name: api.cluster(project_id, name) for name in ("a", "b", "c")}
    assert [path.split("?")[0] for _, path, *_ in recorder.seen] == [
        f"/api/atlas/v1.0/groups/{project_id}/clusters"
    ]
    assert backups["b"] == client.get(f"/groups/{project_id}/clusters/b/backup").get_json()
    assert backups["a"]["enabled"] is False and clusters["c"]["name"] == "c"
    assert api.backup(project_id, "nope") is None


def test_a_shim_that_does_not_embed_backups_is_asked_for_each_one(
    app: Flask, org_key: tuple[str, str], client: ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tls.CACHE_ENV, str(tmp_path / "cache"))

    def older_shim(environ: dict) -> None:
        environ["QUERY_STRING"] = "&".join(
            p for p in environ.get("QUERY_STRING", "").split("&") if not p.startswith("includeBackup")
        )

    recorder = Recorder(app, older_shim)
    project_id = create_project(client)
    create_cluster(client, project_id, "a")
    enable_backup(client, project_id, "a")
    settle(client)
    with serving(recorder) as url:
        api = Client(url, *org_key)
        assert api.backup(project_id, "a") == client.get(f"/groups/{project_id}/clusters/a/backup").get_json()
    answered = [
        path.split("?")[0].rsplit("/", 1)[-1] for _, path, status, _ in recorder.seen if status == 200
    ]
    assert answered == ["clusters", "backup"]
