"""Prometheus metrics: counters fed by events and requests, gauges read from the database at scrape time."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from shim import events
from shim.errors import ORG_API_KEY_REQUIRED, ApiError
from shim.store.models import Cluster, Project, RestoreJob, Snapshot

if TYPE_CHECKING:
    from waitress.server import BaseWSGIServer

    from shim.service import Service

EXTENSION = "cloudbackup.metrics"
# Snapshot sizes span a test volume (KiB) to a production disk (TiB): powers of 4 from 64 KiB to 16 TiB.
SIZE_BUCKETS = tuple(float(64 * 1024 * 4**n) for n in range(15))
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))


class Metrics:
    """The metrics of one app, on a registry of its own (a test process makes many apps)."""

    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.snapshots_finished = Counter(
            "cloudbackup_snapshots_finished", "Snapshots that finished, by outcome.", ["status"], registry=r
        )
        self.snapshot_duration = Histogram(
            "cloudbackup_snapshot_duration_seconds",
            "Time from queued to completed of completed snapshots.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.snapshot_bytes = Histogram(
            "cloudbackup_snapshot_size_bytes",
            "Stored size of completed snapshots.",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.failures = Counter(
            "cloudbackup_failures",
            "Failed snapshots, restores and refused requests, by kind and errorCode.",
            ["kind", "error_code"],
            registry=r,
        )
        self.findings = Counter(
            "cloudbackup_reconcile_findings",
            "What reconciliation found and repaired, by finding.",
            ["finding"],
            registry=r,
        )
        self.requests = Counter(
            "cloudbackup_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "cloudbackup_http_request_duration_seconds",
            "HTTP request latency by method and route.",
            ["method", "route"],
            registry=r,
        )
        r.register(StateCollector(service))
        events.subscribe(service, self.on_event)

    def on_event(self, event: events.Event) -> None:
        fields = event.fields
        if event.name == events.SNAPSHOT_COMPLETED:
            self.snapshots_finished.labels("completed").inc()
            if "durationSeconds" in fields:
                self.snapshot_duration.observe(fields["durationSeconds"])
            if "bytes" in fields:
                self.snapshot_bytes.observe(fields["bytes"])
        elif event.name == events.SNAPSHOT_FAILED:
            self.snapshots_finished.labels("failed").inc()
            self.failures.labels("snapshot", fields.get("errorCode", "UNKNOWN")).inc()
        elif event.name == events.RECONCILE_FINDING:
            self.findings.labels(fields.get("finding", "unknown")).inc()
        elif event.name == events.RESTORE_FINISHED and fields.get("status") == "failed":
            self.failures.labels("restore", events.error_code(fields.get("reason")) or "UNKNOWN").inc()

    def observe_request(self, response: Response) -> None:
        started = g.get("metrics_started")
        # The rule, not the raw path: one series per route, not per project or snapshot id.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        if started is not None:
            self.latency.labels(request.method, route).observe(time.perf_counter() - started)
        if response.status_code >= 400 and response.is_json:
            body = response.get_json(silent=True)
            if isinstance(body, dict) and body.get("errorCode"):
                self.failures.labels("request", str(body["errorCode"])).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    """What the database holds now: snapshots and restore jobs by status, freshness, scheduler lag."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.service.now()
        with self.service.store.read() as session:
            snapshot_counts = session.execute(
                select(Snapshot.status, func.count()).group_by(Snapshot.status)
            ).all()
            restore_counts = session.execute(
                select(RestoreJob.status, func.count()).group_by(RestoreJob.status)
            ).all()
            newest = session.execute(
                select(Project.id, Project.name, Cluster.name, func.max(Snapshot.created_at))
                .join(Cluster, Cluster.project_id == Project.id)
                .join(Snapshot, Snapshot.cluster_id == Cluster.id)
                .where(Snapshot.status == "completed")
                .group_by(Project.id, Project.name, Cluster.name)
            ).all()
            earliest_due = session.execute(select(func.min(Cluster.next_due_at))).scalar_one()
        snapshots = GaugeMetricFamily(
            "cloudbackup_snapshots", "Snapshots on record, by status.", labels=["status"]
        )
        for status, count in snapshot_counts:
            snapshots.add_metric([status], count)
        yield snapshots
        restores = GaugeMetricFamily(
            "cloudbackup_restore_jobs", "Restore jobs on record, by status.", labels=["status"]
        )
        for status, count in restore_counts:
            restores.add_metric([status], count)
        yield restores
        age = GaugeMetricFamily(
            "cloudbackup_newest_snapshot_age_seconds",
            "Age of the newest completed snapshot of each cluster (alert when above a day and a bit).",
            labels=["project_id", "project", "cluster"],
        )
        for project_id, project, cluster, created in newest:
            age.add_metric([project_id, project, cluster], _seconds(now, created))
        yield age
        lag = GaugeMetricFamily(
            "cloudbackup_scheduler_lag_seconds",
            "How far the earliest due snapshot slot is behind the clock (0 when nothing is overdue).",
        )
        lag.add_metric([], max(0.0, _seconds(now, earliest_due)) if earliest_due is not None else 0.0)
        yield lag


def _seconds(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds()


def install(app: Flask, service: Service) -> Metrics:
    """Count every request of `app` and serve GET /metrics to organization keys."""
    metrics = Metrics(service)
    app.extensions[EXTENSION] = metrics

    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        metrics.observe_request(response)
        return response

    bp = Blueprint("metrics", __name__)

    @bp.get("/metrics")
    def scrape() -> Any:
        """Prometheus text format; needs an organization key, as it names every project and cluster."""
        from shim.api.common import runtime

        environ = request.environ
        uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path.rstrip("?")
        principal = runtime().auth.authenticate(request.method, uri, request.headers.get("Authorization"))
        g.principal = principal
        if not principal.is_org:
            raise ApiError(
                403,
                ORG_API_KEY_REQUIRED,
                f"API key {principal.public_key} belongs to one project, and /metrics covers them all; "
                "use an organization key (read-only is enough), or scrape the --metrics-listen port.",
            )
        return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

    app.register_blueprint(bp)
    return metrics


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT, :PORT or PORT (host 127.0.0.1: loopback unless asked otherwise)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not an address; give HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


class Listener:
    """GET /metrics without authentication on its own address, for Prometheus (which cannot speak Digest)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        from prometheus_client import make_wsgi_app
        from waitress.server import create_server

        self.server: BaseWSGIServer = create_server(  # type: ignore[assignment]
            make_wsgi_app(metrics.registry), host=host, port=port, threads=1, ident="cloudbackup-metrics"
        )
        self.host = host
        self.port: int = self.server.effective_port  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._run, name="metrics-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Closing the listening socket from another thread ends the loop, at times with an OSError.
        with contextlib.suppress(SystemExit, OSError):
            self.server.run()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.close()
        self._thread.join(5)
        self.server.task_dispatcher.shutdown()
