"""Snapshots: GET/POST .../backup/snapshots, GET/DELETE .../backup/snapshots/{snapshotId}."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from shim import schemas
from shim.api import links, views
from shim.api.common import body, page, reach, service
from shim.schemas import operation

RESPONSE = schemas.SNAPSHOT + "#/$defs/response"


def blueprint() -> Blueprint:
    bp = Blueprint("snapshots", __name__)
    path = "/groups/<group_id>/clusters/<cluster_name>/backup/snapshots"

    @bp.get(path)
    @operation(summary="List the cluster's snapshots, newest first.", response=RESPONSE, listing=True)
    def list_snapshots(group_id: str, cluster_name: str) -> Any:
        offset, limit = page()
        cluster, rows, total = service().list_snapshots(
            reach(group_id), cluster_name, offset=offset, limit=limit
        )
        listed = views.listing([views.snapshot(row, cluster.name) for row in rows], total)
        return {**listed, "links": links.page(total)}

    @bp.post(path)
    @operation(
        summary="Take an on-demand snapshot, kept retentionInDays days (or until deleted without it); needs "
        "cloud provider snapshots enabled.",
        request=schemas.SNAPSHOT,
        response=RESPONSE,
        status=201,
    )
    def take_snapshot(group_id: str, cluster_name: str) -> Any:
        project_id = reach(group_id)
        data = body(schemas.SNAPSHOT)
        cluster, row = service().take_snapshot(
            project_id, cluster_name, data.get("description"), retention_days=data.get("retentionInDays")
        )
        return views.snapshot(row, cluster.name), 201

    @bp.get(path + "/<snapshot_id>")
    @operation(summary="Get one snapshot.", response=RESPONSE)
    def get_snapshot(group_id: str, cluster_name: str, snapshot_id: str) -> Any:
        cluster, row = service().get_snapshot(reach(group_id), cluster_name, snapshot_id)
        return views.snapshot(row, cluster.name)

    @bp.delete(path + "/<snapshot_id>")
    @operation(summary="Delete a snapshot, from storage first.", status=204, errors=(401, 403, 404, 409))
    def delete_snapshot(group_id: str, cluster_name: str, snapshot_id: str) -> Any:
        service().delete_snapshot(reach(group_id), cluster_name, snapshot_id)
        return "", 204

    return bp
