"""The HTTP API under /api/atlas/v1.0: one blueprint per area, all behind Digest authentication."""

from __future__ import annotations

from flask import Blueprint, Flask, g, request

from shim.api import admin, backup, clusters, health, identity, projects, restore_jobs, snapshots
from shim.api.common import runtime
from shim.schemas import BASE_PATH

READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _authenticate() -> None:
    environ = request.environ
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path.rstrip("?")
    principal = runtime().auth.authenticate(
        request.method, uri, request.headers.get("Authorization"), lambda: request.get_data(cache=True)
    )
    g.principal = principal
    if request.method not in READS:
        principal.require_write()


def register(app: Flask, *, manual_clock: bool) -> None:
    """Mount every area; /admin/clock only with a manual clock (otherwise it is a plain 404)."""
    api = Blueprint("api", __name__, url_prefix=BASE_PATH)
    api.before_request(_authenticate)
    areas = [identity, projects, clusters, backup, snapshots, restore_jobs]
    if manual_clock:
        areas.append(admin)
    for area in areas:
        api.register_blueprint(area.blueprint())
    app.register_blueprint(api)
    app.register_blueprint(health.blueprint())
