"""GET /self: which service and API version answer, and what the calling key reaches."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from shim.api.common import principal, runtime
from shim.schemas import operation

SERVICE = "cloudbackup"
API_VERSION = "1.0"


def blueprint() -> Blueprint:
    bp = Blueprint("identity", __name__)

    @bp.get("/self")
    @operation(
        summary="The service, its API version and the calling key's scope (organization or one project).",
        response="urn:cloudbackup:shim#/$defs/identity",
    )
    def identity() -> Any:
        key = principal()
        return {
            "service": SERVICE,
            "apiVersion": API_VERSION,
            "publicKey": key.public_key,
            "scope": "organization" if key.is_org else "project",
            "projectId": key.project_id,
            "readOnly": key.read_only,
            "crossRegionRestore": runtime().service.driver.cross_region_restore,
        }

    return bp
