"""The operator's `cloudbackup` commands as real processes: start-up safety, keys, status, day-two tasks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth
from shimkit import cluster_body
from test_serve import BASE, Api, Shim, cloudbackup, create_key


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cloudbackup(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def shims() -> Iterator[list[Shim]]:
    started: list[Shim] = []
    yield started
    for shim in started:
        if shim.process.poll() is None:
            shim.kill()


def key_env(shim: Shim, key: tuple[str, str]) -> dict[str, str]:
    return {"CLOUDBACKUP_URL": shim.url, "CLOUDBACKUP_PUBLIC_KEY": key[0], "CLOUDBACKUP_PRIVATE_KEY": key[1]}


def test_a_busy_port_is_one_line_naming_the_port_and_exit_code_1(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), "--data-dir", str(data_dir))
    assert result.returncode == 1
    assert "listening" not in result.stdout
    line = one_line(result.stderr)
    assert f"port {port}" in line and "--port" in line


def test_a_second_serve_on_one_sqlite_database_is_refused_until_the_first_is_gone(
    data_dir: Path, shims: list[Shim]
) -> None:
    first = Shim(data_dir)
    shims.append(first)
    second = run("serve", "--port", "0", "--data-dir", str(data_dir))
    assert second.returncode == 1
    line = one_line(second.stderr)
    assert "another `cloudbackup serve`" in line and str(first.process.pid) in line
    first.kill()  # SIGKILL: no clean-up of its own, the kernel drops the lock
    third = Shim(data_dir)
    shims.append(third)
    assert requests.get(third.url + "/healthz", timeout=10).json()["status"] == "ok"
    assert third.stop()[0] == 0


def test_keys_create_refuses_a_data_directory_that_does_not_exist(tmp_path: Path) -> None:
    result = run("keys", "create", "--data-dir", str(tmp_path / "typo"))
    assert result.returncode == 2
    assert "--data-dir" in one_line(result.stderr)
    assert not (tmp_path / "typo").exists()


def test_keys_create_uses_cloudbackup_data_dir_like_serve(data_dir: Path, shims: list[Shim]) -> None:
    shim = Shim(data_dir)
    shims.append(shim)
    exported = run("keys", "create", "--export", env={"CLOUDBACKUP_DATA_DIR": str(data_dir)})
    assert exported.returncode == 0, exported.stderr
    words = dict(word.split("=", 1) for word in exported.stdout.split()[1:])
    assert exported.stdout.startswith("export ")
    key = (words["CLOUDBACKUP_PUBLIC_KEY"], words["CLOUDBACKUP_PRIVATE_KEY"])
    assert Api(shim, key)("GET", "/groups", expect=200)["totalCount"] == 0


def test_keys_list_shows_scope_and_last_use_and_revoke_locks_the_key_out(
    data_dir: Path, shims: list[Shim]
) -> None:
    shim = Shim(data_dir)
    shims.append(shim)
    used = create_key(data_dir)
    unused = create_key(data_dir, "--read-only")
    Api(shim, used)("GET", "/groups", expect=200)
    listed = run("keys", "list", "--json", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    keys = {k["publicKey"]: k for k in json.loads(listed.stdout)}
    assert keys[used[0]]["scope"] == "organization" and keys[used[0]]["lastUsed"] is not None
    assert keys[unused[0]]["readOnly"] is True and keys[unused[0]]["lastUsed"] is None
    table = run("keys", "list", "--data-dir", str(data_dir)).stdout
    assert "LAST USED" in table and "never" in table
    assert used[1] not in listed.stdout + table and unused[1] not in listed.stdout + table

    revoked = run("keys", "revoke", used[0], "--data-dir", str(data_dir))
    assert revoked.returncode == 0, revoked.stderr
    session = requests.Session()
    session.auth = HTTPDigestAuth(*used)
    deadline = time.monotonic() + 60
    while (answer := session.get(shim.url + BASE + "/groups", timeout=10)).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key was still accepted after a minute"
        time.sleep(0.5)
    assert used[0] in answer.json()["detail"]
    again = run("keys", "revoke", used[0], "--data-dir", str(data_dir))
    assert again.returncode == 1 and "keys list" in one_line(again.stderr)


def test_status_snapshots_and_restore_work_against_a_running_shim(data_dir: Path, shims: list[Shim]) -> None:
    key = create_key(data_dir)
    shim = Shim(data_dir, "--manual-clock")
    shims.append(shim)
    api = Api(shim, key)
    project = api("POST", "/groups", {"name": "shop"}, expect=201)
    api(
        "POST",
        f"/groups/{project['id']}/clusters",
        cluster_body("orders", providerBackupEnabled=True),
        expect=201,
    )
    api("POST", f"/groups/{project['id']}/clusters", cluster_body("spare"), expect=201)
    api("POST", "/admin/clock", {"advanceSeconds": 4 * 86400}, expect=200)
    env = key_env(shim, key)

    status = run("status", env=env)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[1]: line for line in status.stdout.splitlines()[1:]}
    assert "CLOUD_PROVIDER_SNAPSHOTS" in rows["orders"] and "eastus2" in rows["orders"]
    # The clock moved four days to the minute, so the fifth slot's snapshot was just taken, the sixth is due.
    assert "0s ago, completed" in rows["orders"] and "in 1d" in rows["orders"]
    assert "off" in rows["spare"]
    entries = {e["cluster"]: e for e in json.loads(run("status", "--json", env=env).stdout)}
    assert entries["orders"]["retained"] == 3 and entries["orders"]["storageRegion"] == "eastus2"
    assert entries["orders"]["lastSnapshot"]["status"] == "completed" and entries["orders"]["failure"] is None
    assert entries["spare"]["backupMethod"] is None and entries["spare"]["retained"] == 0
    from_database = run("status", "--json", "--data-dir", str(data_dir), env={"CLOUDBACKUP_URL": "http://-"})
    assert {e["cluster"]: e for e in json.loads(from_database.stdout)} == entries

    listed = json.loads(run("snapshots", "orders", "--json", env=env).stdout)
    assert [s["status"] for s in listed] == ["completed"] * 3
    table = run("snapshots", "orders", env=env).stdout
    assert all(s["id"] in table for s in listed)
    restored = run("restore", "orders", listed[0]["id"], "--to", "spare", env=env)
    assert restored.returncode == 0, restored.stderr
    assert "completed onto spare" in restored.stdout
    missing = run("restore", "nosuch", listed[0]["id"], env=env)
    assert missing.returncode == 1 and "no cluster nosuch" in one_line(missing.stderr)

    # A member volume lost from storage: the next day's snapshot fails, and status says so.
    for volume in (data_dir / "volumes").glob(f"*/{project['id']}/*/member-*.img"):
        if volume.parent.name == api("GET", f"/groups/{project['id']}/clusters/orders", expect=200)["id"]:
            volume.unlink()
    api("POST", "/admin/clock", {"advanceSeconds": 86400}, expect=200)
    failed = {e["cluster"]: e for e in json.loads(run("status", "--json", env=env).stdout)}["orders"]
    assert failed["lastSnapshot"]["status"] == "failed" and failed["failure"]
    assert "ago, failed" in run("status", env=env).stdout
    assert shim.stop(signal.SIGTERM)[0] == 0


def test_read_commands_say_how_to_reach_the_shim(data_dir: Path, shims: list[Shim]) -> None:
    no_key = run("status", env={"CLOUDBACKUP_PUBLIC_KEY": "", "CLOUDBACKUP_PRIVATE_KEY": ""})
    assert no_key.returncode == 2 and "keys create --export" in one_line(no_key.stderr)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    down = run(
        "status", "--url", nowhere, env={"CLOUDBACKUP_PUBLIC_KEY": "a", "CLOUDBACKUP_PRIVATE_KEY": "b"}
    )
    assert down.returncode == 3 and "cloudbackup serve" in one_line(down.stderr)
    shim = Shim(data_dir)
    shims.append(shim)
    wrong = run("status", env={**key_env(shim, ("nosuchky", "x"))})
    assert wrong.returncode == 3 and "nosuchky" in one_line(wrong.stderr)
