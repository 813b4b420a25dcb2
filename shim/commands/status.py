"""`cloudbackup status [--json]`: every project's clusters and the state of their backups, at a glance."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from shim.commands import OK, CommandError
from shim.commands.remote import Api, add_url, segment
from shim.commands.table import render

HEADER = ("PROJECT", "CLUSTER", "BACKUP", "REGION", "LAST SNAPSHOT", "NEXT DUE", "RETAINED", "FAILURE")


def register(commands: Any) -> None:
    status = commands.add_parser("status", help="projects, clusters and their backups, from a running shim")
    add_url(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=show_status)


def _now(api: Api) -> datetime:
    """The shim's own now: with --manual-clock it is not the wall clock, and ages must agree with it."""
    try:
        return parse_time(api.get("/admin/clock")["now"]) or datetime.now(UTC)
    except CommandError:
        return datetime.now(UTC)


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def span(seconds: float) -> str:
    """A duration as a person says it: 45s, 12m, 5h, 3d."""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def collect(api: Api) -> list[dict[str, Any]]:
    """One entry per cluster (a project without clusters is one entry too)."""
    entries: list[dict[str, Any]] = []
    for project in api.every("/groups"):
        clusters = list(api.every(f"/groups/{segment(project['id'])}/clusters", "includeBackup=true"))
        if not clusters:
            entries.append({"project": project["name"], "projectId": project["id"], "cluster": None})
        for cluster in clusters:
            backup = cluster.get("backup") or {}
            snapshots: list[dict[str, Any]] = []
            if backup.get("enabled"):
                path = (
                    f"/groups/{segment(project['id'])}/clusters/{segment(cluster['name'])}/backup/snapshots"
                )
                snapshots = list(api.every(path))
            last = snapshots[0] if snapshots else None
            failed = last if last and last["status"] == "failed" else None
            entries.append(
                {
                    "project": project["name"],
                    "projectId": project["id"],
                    "cluster": cluster["name"],
                    "state": cluster.get("stateName"),
                    "backupMethod": backup.get("method"),
                    "storageRegion": backup.get("storageRegion"),
                    "lastSnapshot": (
                        {"id": last["id"], "createdAt": last["createdAt"], "status": last["status"]}
                        if last
                        else None
                    ),
                    "nextSnapshotAt": backup.get("nextSnapshotAt"),
                    "retained": sum(1 for s in snapshots if s["status"] == "completed"),
                    "failure": (failed.get("failureReason") or "snapshot failed") if failed else None,
                }
            )
    return entries


def _row(entry: dict[str, Any], now: datetime) -> tuple[object, ...]:
    if entry["cluster"] is None:
        return (entry["project"], "(no clusters)", None, None, None, None, None, None)
    last = entry["lastSnapshot"]
    last_text = None
    if last:
        created = parse_time(last["createdAt"])
        last_text = (
            f"{span((now - created).total_seconds())} ago, {last['status']}" if created else last["status"]
        )
    due = parse_time(entry["nextSnapshotAt"])
    due_text = None
    if due:
        seconds = (due - now).total_seconds()
        due_text = f"in {span(seconds)}" if seconds >= 0 else f"overdue {span(seconds)}"
    return (
        entry["project"],
        entry["cluster"],
        entry["backupMethod"] or "off",
        entry["storageRegion"],
        last_text,
        due_text,
        entry["retained"] if entry["backupMethod"] else None,
        entry["failure"],
    )


def show_status(args: argparse.Namespace) -> int:
    api = Api(args)
    entries = collect(api)
    if args.json:
        print(json.dumps(entries, indent=2))
        return OK
    if not entries:
        sys.stdout.write("no projects yet; create them with Terraform (see README, Using it)\n")
        return OK
    now = _now(api)
    sys.stdout.write(render(HEADER, [_row(entry, now) for entry in entries]))
    return OK
