"""The README's demo: a local shim, the Terraform provider, and a backup's whole life in a few minutes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from requests.auth import HTTPDigestAuth

from shim.drivers.digest import content_digest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO = ROOT / ".cloudbackup" / "demo"
API = "/api/atlas/v1.0"
DAY = 86_400
WRITTEN_BYTES = 8 << 20


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def start_shim(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    log = (data_dir / "shim.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "cloudbackup"), "serve", "--port", "0", "--manual-clock", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"the shim did not start; see {data_dir / 'shim.log'}")
    return proc, line.removeprefix("listening on ")


def terraform(workdir: Path, *args: str, env: dict[str, str]) -> None:
    command = [str(BIN / "terraform"), *args]
    print(f"$ terraform {' '.join(args)}", flush=True)
    subprocess.run(command, cwd=workdir, env=env, check=True)


def outputs(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    raw = subprocess.run(
        [str(BIN / "terraform"), "output", "-json"], cwd=workdir, env=env, check=True, capture_output=True
    ).stdout
    return {name: value["value"] for name, value in json.loads(raw).items()}


def copy_config(example: str) -> Path:
    workdir = DEMO / f"tf-{example}"
    shutil.copytree(ROOT / "examples" / example, workdir)
    return workdir


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)

    step("starting the shim: local driver, SQLite, manual clock")
    shim, url = start_shim(DEMO)
    try:
        print(f"listening on {url} (log: {DEMO / 'shim.log'})")
        return run(url)
    finally:
        shim.send_signal(signal.SIGTERM)
        code = shim.wait(timeout=30)
        step(f"stopped the shim (exit code {code})")


def run(url: str) -> int:
    step("creating an organization API key")
    keys = json.loads(
        subprocess.run(
            [str(BIN / "cloudbackup"), "keys", "create", "--data-dir", str(DEMO)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    print(f"publicKey {keys['publicKey']} (the private key goes to Terraform through the environment)")
    session = requests.Session()
    session.auth = HTTPDigestAuth(keys["publicKey"], keys["privateKey"])

    def api(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, f"{url}{API}{path}", json=body, timeout=600)
        response.raise_for_status()
        return response.json() if response.content else None

    step("installing the provider where Terraform finds it (~/.terraform.d/plugins)")
    subprocess.run([str(BIN / "cloudbackup"), "provider", "install"], check=True)

    env = {
        **os.environ,
        "CLOUDBACKUP_URL": url,
        "CLOUDBACKUP_PUBLIC_KEY": keys["publicKey"],
        "CLOUDBACKUP_PRIVATE_KEY": keys["privateKey"],
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }

    step("terraform apply examples/quickstart: a project, an Azure M10 replica set in two regions, backup")
    quickstart = copy_config("quickstart")
    terraform(quickstart, "init", "-input=false", "-no-color", env=env)
    terraform(quickstart, "apply", "-input=false", "-auto-approve", env=env)
    out = outputs(quickstart, env)
    project = next(p for p in api("GET", "/groups")["results"] if p["name"] == "quickstart")
    cluster = api("GET", f"/groups/{project['id']}/clusters/orders")
    snapshots = api("GET", f"/groups/{project['id']}/clusters/orders/backup/snapshots")["results"]
    first = next(s for s in snapshots if s["snapshotType"] == "scheduled")
    print(f"storage region (the preferred region): {out['storage_region']}")
    print(f"first scheduled snapshot {first['id']}: {first['status']} in {first['regionName']}")
    print(f"project {project['id']} is locked to {project['backupMethod']}")

    step(f"the database writes {WRITTEN_BYTES >> 20} MiB into every member of 'orders'")
    volumes = sorted((DEMO / "volumes").glob(f"*/{project['id']}/{cluster['id']}/member-*.img"))
    data = os.urandom(WRITTEN_BYTES)
    for volume in volumes:
        with volume.open("r+b") as f:
            f.seek(1 << 20)
            f.write(data)
    print(f"{len(volumes)} volumes, each now {content_digest(volumes[0])}")

    step("advancing the clock four days (each daily slot taken in order, retention applied)")
    clock = api("POST", "/admin/clock", {"advanceSeconds": 4 * DAY})
    print(f"the shim's clock now reads {clock['now']}")
    terraform(quickstart, "apply", "-refresh-only", "-input=false", "-auto-approve", "-no-color", env=env)
    snapshots = api("GET", f"/groups/{project['id']}/clusters/orders/backup/snapshots")["results"]
    scheduled = [s for s in snapshots if s["snapshotType"] == "scheduled"]
    for s in snapshots:
        print(f"  {s['id']}  {s['snapshotType']:<9}  {s['createdAt']}  {s['status']}  {s['regionName']}")
    stored = sorted(p.stem for p in (DEMO / "snapshots").glob("*/*.snap"))
    print(f"{len(scheduled)} scheduled snapshots retained; storage holds {len(stored)} snapshot files "
          f"({len(scheduled)} scheduled + {len(snapshots) - len(scheduled)} on-demand), "
          f"all under snapshots/{out['storage_region']}/")
    if len(scheduled) != 3 or set(stored) != {s["id"] for s in snapshots}:
        print("unexpected: storage and records disagree", file=sys.stderr)
        return 1

    newest = scheduled[0]
    step(f"terraform apply examples/restore: snapshot {newest['id']} into a second cluster")
    restore = copy_config("restore")
    terraform(restore, "init", "-input=false", "-no-color", env=env)
    terraform(
        restore, "apply", "-input=false", "-auto-approve",
        f"-var=project_id={project['id']}", f"-var=snapshot_id={newest['id']}", env=env,
    )
    target = api("GET", f"/groups/{project['id']}/clusters/orders-restored")
    targets = sorted((DEMO / "volumes").glob(f"*/{project['id']}/{target['id']}/member-*.img"))

    step("checksums (sha256-4m: SHA-256 over the SHA-256 of each 4 MiB block)")
    print(f"  source volume    {content_digest(volumes[0])}")
    print(f"  snapshot         {newest['checksum']}")
    digests = {content_digest(path) for path in targets}
    for path in targets:
        print(f"  restored {path.name}  {content_digest(path)}")
    if digests != {newest["checksum"]} or newest["checksum"] != content_digest(volumes[0]):
        print("the checksums do not match", file=sys.stderr)
        return 1
    print("all match: the restored cluster holds exactly what the snapshot holds")

    step("terraform destroy: terminating the clusters deletes every snapshot from storage (R9)")
    terraform(restore, "destroy", "-input=false", "-auto-approve", "-no-color",
              f"-var=project_id={project['id']}", f"-var=snapshot_id={newest['id']}", env=env)
    terraform(quickstart, "destroy", "-input=false", "-auto-approve", "-no-color", env=env)
    left = sorted((DEMO / "snapshots").glob("*/*.snap")) + sorted((DEMO / "volumes").glob("*/*/*/*.img"))
    print(f"snapshot and volume files left in storage: {len(left)}")
    if left:
        return 1
    print(f"\nDone. The demo's files (database, log, Terraform folders) are in {DEMO}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
