"""GET /: the read-only status page (server-rendered), Digest-authenticated like the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, render_template, request
from sqlalchemy import select

from contract import rules
from shim.api.common import runtime
from shim.store.models import Cluster, Project, RestoreJob, Snapshot

# Enough for an operator's glance; the API and `cloudbackup status` page through the rest.
MAX_CLUSTERS = 500
SNAPSHOTS_PER_CLUSTER = 20
RESTORES_PER_CLUSTER = 5
REFRESH_SECONDS = 30


@dataclass
class ClusterView:
    cluster: Cluster
    snapshots: list[Snapshot] = field(default_factory=list)
    restores: list[RestoreJob] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s.status == "failed" for s in self.snapshots) or any(
            r.status == "failed" for r in self.restores
        )

    @property
    def last(self) -> Snapshot | None:
        return next((s for s in self.snapshots if s.status != "queued"), None)


def age(now: datetime, then: datetime | None) -> str:
    """A person's reading of a duration: "3 d 2 h", "5 h 10 min", "42 s"."""
    if then is None:
        return "—"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "in " + age(then, now)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def size(value: int | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


def _authenticate() -> None:
    environ = request.environ
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path.rstrip("?")
    g.principal = runtime().auth.authenticate(request.method, uri, request.headers.get("Authorization"))


def _gather(project_only: str | None) -> tuple[list[tuple[Project, list[ClusterView]]], int]:
    store = runtime().service.store
    with store.read() as session:
        projects_query = select(Project).order_by(Project.name)
        clusters_query = select(Cluster).order_by(Cluster.name).limit(MAX_CLUSTERS + 1)
        if project_only is not None:
            projects_query = projects_query.where(Project.id == project_only)
            clusters_query = clusters_query.where(Cluster.project_id == project_only)
        projects = list(session.execute(projects_query).scalars())
        clusters = list(session.execute(clusters_query).scalars())
        hidden = max(0, len(clusters) - MAX_CLUSTERS)
        views = {c.id: ClusterView(c) for c in clusters[:MAX_CLUSTERS]}
        for cluster_id, view in views.items():
            view.snapshots = list(
                session.execute(
                    select(Snapshot)
                    .where(Snapshot.cluster_id == cluster_id)
                    .order_by(Snapshot.created_at.desc(), Snapshot.id.desc())
                    .limit(SNAPSHOTS_PER_CLUSTER)
                ).scalars()
            )
            view.restores = list(
                session.execute(
                    select(RestoreJob)
                    .where(RestoreJob.target_cluster_id == cluster_id)
                    .order_by(RestoreJob.created_at.desc())
                    .limit(RESTORES_PER_CLUSTER)
                ).scalars()
            )
        session.expunge_all()
    by_project: dict[str, list[ClusterView]] = {p.id: [] for p in projects}
    for view in views.values():
        by_project.setdefault(view.cluster.project_id, []).append(view)
    return [(p, by_project[p.id]) for p in projects], hidden


def blueprint() -> Blueprint:
    bp = Blueprint("page", __name__)
    bp.before_request(_authenticate)

    @bp.get("/")
    def status_page() -> Any:
        principal = g.principal
        service = runtime().service
        projects, hidden = _gather(principal.project_id)
        now = service.now()
        failures = sum(1 for _, views in projects for v in views if v.failed)
        html = render_template(
            "status.html",
            projects=projects,
            hidden=hidden,
            now=now,
            failures=failures,
            principal=principal,
            driver=service.driver.name,
            manual_clock=service.clock.manual,
            refresh=REFRESH_SECONDS,
            cloud_snapshots=rules.CLOUD_PROVIDER_SNAPSHOTS,
            age=lambda then: age(now, then),
            size=size,
            region_names=lambda c: ", ".join(c.regions),
        )
        response = Response(html, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp
