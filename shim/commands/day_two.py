"""`cloudbackup snapshots CLUSTER` and `cloudbackup restore`: the day-two tasks, without Terraform."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from shim.commands import FAILED, OK, CommandError
from shim.commands.remote import Api, add_url, segment
from shim.commands.status import parse_time, span
from shim.commands.table import render


def register(commands: Any) -> None:
    snapshots = commands.add_parser(
        "snapshots", help="list a cluster's snapshots, newest first, or take one on demand (--take)"
    )
    snapshots.add_argument("cluster", metavar="CLUSTER", help="cluster name")
    _add_project(snapshots)
    snapshots.add_argument("--take", action="store_true", help="take an on-demand snapshot now")
    snapshots.add_argument("--description", default=None, help="with --take: the snapshot's description")
    snapshots.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_url(snapshots)
    snapshots.set_defaults(run=snapshots_command)

    restore = commands.add_parser(
        "restore", help="restore a snapshot onto a cluster (its volumes are replaced)"
    )
    restore.add_argument("cluster", metavar="CLUSTER", help="the cluster the snapshot belongs to")
    restore.add_argument("snapshot_id", metavar="SNAPSHOT_ID", help="see `cloudbackup snapshots CLUSTER`")
    _add_project(restore)
    restore.add_argument(
        "--to", dest="target", metavar="TARGET_CLUSTER", help="the cluster to restore onto (default: CLUSTER)"
    )
    restore.add_argument(
        "--target-project", metavar="PROJECT", help="the target cluster's project (default: the snapshot's)"
    )
    restore.add_argument("--no-wait", action="store_true", help="return once the restore job is queued")
    add_url(restore)
    restore.set_defaults(run=restore_command)


def _add_project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project",
        metavar="PROJECT",
        help="project name or ID (needed only when several projects have a cluster of that name)",
    )


def find_project(api: Api, cluster: str, project: str | None) -> dict[str, Any]:
    """The project holding `cluster`: the one named (by name or ID), or the only one that has it."""
    projects = list(api.every("/groups"))
    if project is not None:
        chosen = [p for p in projects if project in (p["id"], p["name"])]
        if not chosen:
            raise CommandError(f"no project {project}; see `cloudbackup status`", FAILED)
        return chosen[0]
    holding = [
        p
        for p in projects
        if any(c["name"] == cluster for c in api.every(f"/groups/{segment(p['id'])}/clusters"))
    ]
    if not holding:
        raise CommandError(f"no cluster {cluster} in any project; see `cloudbackup status`", FAILED)
    if len(holding) > 1:
        names = ", ".join(p["name"] for p in holding)
        raise CommandError(f"several projects have a cluster {cluster} ({names}); pass --project", FAILED)
    return holding[0]


def _snapshots_path(project: dict[str, Any], cluster: str) -> str:
    return f"/groups/{segment(project['id'])}/clusters/{segment(cluster)}/backup/snapshots"


def snapshots_command(args: argparse.Namespace) -> int:
    api = Api(args)
    project = find_project(api, args.cluster, args.project)
    path = _snapshots_path(project, args.cluster)
    if args.take:
        body = {"description": args.description} if args.description else {}
        taken = api.call("POST", path, body)
        print(
            json.dumps(taken, indent=2) if args.json else f"taking snapshot {taken['id']} ({taken['status']})"
        )
        return OK
    items = list(api.every(path))
    if args.json:
        print(json.dumps(items, indent=2))
        return OK
    if not items:
        sys.stdout.write(
            f"cluster {args.cluster} has no snapshots (is backup enabled? see `cloudbackup status`)\n"
        )
        return OK
    rows = [
        (
            s["id"],
            s["createdAt"],
            s["status"],
            s["snapshotType"],
            s["regionName"],
            _size(s.get("storageSizeBytes")),
            s.get("expiresAt") or "kept until deleted",
            s.get("failureReason"),
        )
        for s in items
    ]
    header = ("ID", "CREATED", "STATUS", "TYPE", "REGION", "SIZE", "EXPIRES", "FAILURE")
    sys.stdout.write(render(header, rows))
    return OK


def _size(size: int | None) -> str | None:
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return None  # unreachable: the loop returns at TiB


def restore_command(args: argparse.Namespace) -> int:
    api = Api(args)
    project = find_project(api, args.cluster, args.project)
    body: dict[str, Any] = {"snapshotId": args.snapshot_id, "targetClusterName": args.target or args.cluster}
    if args.target_project:
        target = find_project(api, body["targetClusterName"], args.target_project)
        body["targetGroupId"] = target["id"]
    path = f"/groups/{segment(project['id'])}/clusters/{segment(args.cluster)}/backup/restoreJobs"
    job = api.call("POST", path, body)
    print(f"restore job {job['id']}: {job['status']}", flush=True)
    started = time.monotonic()
    while not args.no_wait and job["status"] in ("queued", "inProgress"):
        time.sleep(1.0)
        job = api.get(f"{path}/{segment(job['id'])}")
    if job["status"] == "failed":
        raise CommandError(f"restore job {job['id']} failed: {job.get('failureReason') or 'no reason given'}")
    if job["status"] == "completed":
        finished = parse_time(job.get("finishedAt"))
        took = span(time.monotonic() - started) if finished else ""
        print(
            f"restore job {job['id']}: completed onto {body['targetClusterName']} {took}".rstrip(), flush=True
        )
    return OK
