"""`cloudbackup status [--json]`: every project's clusters and the state of their backups, at a glance."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from shim.commands import OK, CommandError, add_data_dir
from shim.commands.remote import Api, add_url, segment
from shim.commands.table import render

HEADER = ("PROJECT", "CLUSTER", "BACKUP", "REGION", "LAST SNAPSHOT", "NEXT DUE", "RETAINED", "FAILURE")


def register(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="projects, clusters and their backups: from a running shim, or from the database with"
        " --data-dir/--database",
    )
    add_url(status)
    add_data_dir(status)
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


def _entry(
    project: dict[str, Any], cluster: dict[str, Any], backup: dict[str, Any], snapshots: list[dict[str, Any]]
) -> dict[str, Any]:
    """One cluster's line, from API-shaped project, cluster, backup and snapshots (newest first)."""
    last = snapshots[0] if snapshots else None
    failed = last if last and last["status"] == "failed" else None
    return {
        "project": project["name"],
        "projectId": project["id"],
        "cluster": cluster["name"],
        "state": cluster.get("stateName"),
        "backupMethod": backup.get("method"),
        "storageRegion": backup.get("storageRegion"),
        "lastSnapshot": (
            {"id": last["id"], "createdAt": last["createdAt"], "status": last["status"]} if last else None
        ),
        "nextSnapshotAt": backup.get("nextSnapshotAt"),
        "retained": sum(1 for s in snapshots if s["status"] == "completed"),
        "failure": (failed.get("failureReason") or "snapshot failed") if failed else None,
    }


def collect_from_database(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The same entries read from the database itself: for a shim that is not running."""
    from sqlalchemy import select

    from contract import rules
    from shim.clock import format_time
    from shim.commands.database import open_store
    from shim.service import preferred_region
    from shim.store.models import Cluster, Project, Snapshot

    store = open_store(args)
    entries: list[dict[str, Any]] = []
    try:
        with store.read() as session:
            for project in session.scalars(select(Project).order_by(Project.created_at.desc())):
                head = {"id": project.id, "name": project.name}
                clusters = session.scalars(
                    select(Cluster)
                    .where(Cluster.project_id == project.id)
                    .order_by(Cluster.created_at.desc())
                ).all()
                if not clusters:
                    entries.append({"project": project.name, "projectId": project.id, "cluster": None})
                for cluster in clusters:
                    executed = cluster.backup_method == rules.CLOUD_PROVIDER_SNAPSHOTS
                    backup = {
                        "method": cluster.backup_method,
                        "storageRegion": preferred_region(cluster) if executed else None,
                        "nextSnapshotAt": format_time(cluster.next_due_at) if executed else None,
                    }
                    rows = session.scalars(
                        select(Snapshot)
                        .where(Snapshot.cluster_id == cluster.id)
                        .order_by(Snapshot.created_at.desc(), Snapshot.id.desc())
                    )
                    snapshots = [
                        {
                            "id": row.id,
                            "createdAt": format_time(row.created_at),
                            "status": row.status,
                            "failureReason": row.failure_reason,
                        }
                        for row in rows
                    ]
                    entries.append(
                        _entry(head, {"name": cluster.name, "stateName": cluster.state}, backup, snapshots)
                    )
    finally:
        store.close()
    return entries


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
            entries.append(_entry(project, cluster, backup, snapshots))
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
    from_database = args.data_dir is not None or args.database is not None
    api = None if from_database else Api(args)
    entries = collect_from_database(args) if api is None else collect(api)
    if args.json:
        print(json.dumps(entries, indent=2))
        return OK
    if not entries:
        sys.stdout.write("no projects yet; create them with Terraform (see README, Using it)\n")
        return OK
    now = datetime.now(UTC) if api is None else _now(api)
    sys.stdout.write(render(HEADER, [_row(entry, now) for entry in entries]))
    return OK
