"""Projects: GET/POST /groups, GET/DELETE /groups/{groupId}."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from shim import schemas
from shim.api import views
from shim.api.common import body, page, principal, reach, service
from shim.schemas import operation


def blueprint() -> Blueprint:
    bp = Blueprint("projects", __name__)

    @bp.get("/groups")
    @operation(
        summary="List the projects the API key reaches, newest first.",
        response=schemas.PROJECT + "#/$defs/response",
        listing=True,
    )
    def list_projects() -> Any:
        offset, limit = page()
        rows, total = service().list_projects(only=principal().project_id, offset=offset, limit=limit)
        summaries = service().project_summaries(row.id for row in rows)
        return views.listing([views.project(row, *summaries[row.id]) for row in rows], total)

    @bp.post("/groups")
    @operation(
        summary="Create a project (organization keys only).",
        request=schemas.PROJECT,
        response=schemas.PROJECT + "#/$defs/response",
        status=201,
        errors=(400, 401, 403, 409),
    )
    def create_project() -> Any:
        principal().require_org()
        data = body(schemas.PROJECT)
        row = service().create_project(data["name"])
        return views.project(row, None, 0), 201

    @bp.get("/groups/<group_id>")
    @operation(summary="Get one project.", response=schemas.PROJECT + "#/$defs/response")
    def get_project(group_id: str) -> Any:
        row = service().get_project(reach(group_id))
        return views.project(row, *service().project_summaries([row.id])[row.id])

    @bp.delete("/groups/<group_id>")
    @operation(summary="Delete a project that has no clusters.", status=204, errors=(401, 403, 404, 409))
    def delete_project(group_id: str) -> Any:
        service().delete_project(reach(group_id))
        return "", 204

    return bp
