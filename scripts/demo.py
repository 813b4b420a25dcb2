"""The README's demo: a local shim, the Terraform provider, and a backup's whole life, told in a few lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from requests.auth import HTTPDigestAuth

from shim.drivers.digest import content_digest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO = ROOT / ".cloudbackup" / "demo"
TERRAFORM_LOG = DEMO / "terraform.log"
API = "/api/atlas/v1.0"
DAY = 86_400
WRITTEN_BYTES = 8 << 20
# Colour only for a person at a terminal: not in a file, a pipe or a CI log, nor under NO_COLOR.
COLOUR = sys.stdout.isatty() and "NO_COLOR" not in os.environ


def bold(text: str) -> str:
    return f"\033[1m{text}\033[0m" if COLOUR else text


def step(number: int, text: str) -> None:
    print(f"\n{bold(f'{number}. {text}')}", flush=True)


def say(text: str) -> None:
    print(f"   {text}", flush=True)


class Failed(Exception):
    """The demo found something other than what it tells."""


def command(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else shutil.which(name) or name


def start_shim() -> tuple[subprocess.Popen[str], str]:
    log = (DEMO / "shim.log").open("w")
    proc = subprocess.Popen(
        [command("cloudbackup"), "serve", "--port", "0", "--manual-clock", "--data-dir", str(DEMO)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        raise Failed(f"the shim did not start; see {DEMO / 'shim.log'}")
    return proc, line.removeprefix("listening on ")


def terraform(workdir: Path, *args: str, env: dict[str, str]) -> str:
    """Run terraform with its output in terraform.log; return its summary line ("Apply complete! ...")."""
    with TERRAFORM_LOG.open("a") as log:
        log.write(f"\n$ (cd {workdir.name} && terraform {' '.join(args)})\n")
        log.flush()
        result = subprocess.run(
            [command("terraform"), *args, "-no-color"], cwd=workdir, env=env, stdout=log, stderr=log
        )
    lines = TERRAFORM_LOG.read_text().splitlines()
    if result.returncode != 0:
        tail = "\n".join(lines[-15:])
        raise Failed(f"terraform {args[0]} failed (whole output in {TERRAFORM_LOG}):\n{tail}")
    summaries = [
        line for line in lines if " complete!" in line or "has been successfully initialized" in line
    ]
    return summaries[-1].strip() if summaries else f"terraform {args[0]}: done"


def outputs(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    raw = subprocess.run(
        [command("terraform"), "output", "-json"], cwd=workdir, env=env, check=True, capture_output=True
    ).stdout
    return {name: value["value"] for name, value in json.loads(raw).items()}


def copy_config(example: str) -> Path:
    workdir = DEMO / f"tf-{example}"
    shutil.copytree(ROOT / "examples" / example, workdir)
    return workdir


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    print(bold("cloudbackup: Atlas-style cloud provider snapshots, managed by Terraform"))
    step(1, "Start the shim (local driver, SQLite, a manual clock the demo can move)")
    try:
        shim, url = start_shim()
    except Failed as failure:
        print(f"demo failed: {failure}", file=sys.stderr)
        return 1
    say(f"listening on {url}")
    try:
        run(url)
        code = 0
    except Failed as failure:
        print(f"\ndemo failed: {failure}", file=sys.stderr)
        code = 1
    finally:
        shim.send_signal(signal.SIGTERM)
        stopped = shim.wait(timeout=60)
    print(f"\nThe shim stopped (exit code {stopped}); nothing is left running.")
    print(f"Logs and Terraform folders: {DEMO.relative_to(ROOT)}/ (shim.log, terraform.log)")
    return code or stopped


def run(url: str) -> None:
    step(2, "Create an API key and install the Terraform provider")
    keys = json.loads(
        subprocess.run(
            [command("cloudbackup"), "keys", "create", "--data-dir", str(DEMO)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    installed = subprocess.run(
        [command("cloudbackup"), "provider", "install"], check=True, capture_output=True, text=True
    ).stdout.strip()
    say(f"key {keys['publicKey']} (the private key reaches Terraform through the environment)")
    say(f"provider in {installed.split('/registry.terraform.io/')[0]}")
    session = requests.Session()
    session.auth = HTTPDigestAuth(keys["publicKey"], keys["privateKey"])

    def api(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, f"{url}{API}{path}", json=body, timeout=600)
        response.raise_for_status()
        return response.json() if response.content else None

    env = {
        **os.environ,
        "CLOUDBACKUP_URL": url,
        "CLOUDBACKUP_PUBLIC_KEY": keys["publicKey"],
        "CLOUDBACKUP_PRIVATE_KEY": keys["privateKey"],
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }

    step(3, "terraform apply examples/quickstart: a project, an Azure M10 replica set in two regions, backup")
    quickstart = copy_config("quickstart")
    terraform(quickstart, "init", "-input=false", env=env)
    say(terraform(quickstart, "apply", "-input=false", "-auto-approve", env=env))
    out = outputs(quickstart, env)
    project = next(p for p in api("GET", "/groups")["results"] if p["name"] == "quickstart")
    cluster = api("GET", f"/groups/{project['id']}/clusters/orders")
    say(f"snapshots of 'orders' are stored in {out['storage_region']}, its preferred region (R6)")
    say(f"the first one was taken at once (R7); the project is locked to {project['backupMethod']} (R4)")

    step(4, f"The database writes {WRITTEN_BYTES >> 20} MiB into every member of 'orders'")
    volumes = sorted((DEMO / "volumes").glob(f"*/{project['id']}/{cluster['id']}/member-*.img"))
    data = os.urandom(WRITTEN_BYTES)
    for volume in volumes:
        with volume.open("r+b") as f:
            f.seek(1 << 20)
            f.write(data)
    source_digest = content_digest(volumes[0])
    say(f"{len(volumes)} member volumes, each now {source_digest[:24]}…")

    step(5, "Four days pass: a snapshot every 24 hours, the last three kept (R7, R8)")
    api("POST", "/admin/clock", {"advanceSeconds": 4 * DAY})
    terraform(quickstart, "apply", "-refresh-only", "-input=false", "-auto-approve", env=env)
    status = subprocess.run(
        [command("cloudbackup"), "status"], env=env, check=True, capture_output=True, text=True
    ).stdout
    for line in status.splitlines():
        say(f"  {line}")
    snapshots = api("GET", f"/groups/{project['id']}/clusters/orders/backup/snapshots")["results"]
    scheduled = [s for s in snapshots if s["snapshotType"] == "scheduled"]
    stored = {p.stem for p in (DEMO / "snapshots").glob("*/*.snap")}
    if len(scheduled) != 3 or stored != {s["id"] for s in snapshots}:
        raise Failed(f"expected 3 scheduled snapshots, each stored once; records {snapshots}, files {stored}")
    say(
        f"storage holds exactly those: {len(scheduled)} scheduled + {len(snapshots) - len(scheduled)} "
        f"on-demand, all under snapshots/{out['storage_region']}/"
    )

    newest = scheduled[0]
    step(6, "terraform apply examples/restore: the newest snapshot into a second cluster (R10)")
    restore = copy_config("restore")
    restore_vars = (f"-var=project_id={project['id']}", f"-var=snapshot_id={newest['id']}")
    terraform(restore, "init", "-input=false", env=env)
    say(terraform(restore, "apply", "-input=false", "-auto-approve", *restore_vars, env=env))
    target = api("GET", f"/groups/{project['id']}/clusters/orders-restored")
    restored = sorted((DEMO / "volumes").glob(f"*/{project['id']}/{target['id']}/member-*.img"))
    digests = {content_digest(path) for path in restored}
    if digests != {newest["checksum"]} or newest["checksum"] != source_digest:
        raise Failed(
            f"checksums differ: source {source_digest}, snapshot {newest['checksum']}, restored {digests}"
        )
    say(f"source, snapshot and all {len(restored)} restored members: {source_digest[:24]}…")

    step(7, "terraform destroy: terminating the clusters deletes their snapshots from storage (R9)")
    say(terraform(restore, "destroy", "-input=false", "-auto-approve", *restore_vars, env=env))
    say(terraform(quickstart, "destroy", "-input=false", "-auto-approve", env=env))
    left = sorted((DEMO / "snapshots").glob("*/*.snap")) + sorted((DEMO / "volumes").glob("*/*/*/*.img"))
    if left:
        raise Failed(f"files left in storage: {[str(p) for p in left]}")
    say("no snapshot or volume file is left")


if __name__ == "__main__":
    sys.exit(main())
