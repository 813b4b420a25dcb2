"""What needs no key: GET /healthz and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from shim import schemas
from shim.api.common import runtime
from shim.schemas import operation


def blueprint() -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    @operation(
        summary="Whether the shim is up (no authentication).",
        response="urn:cloudbackup:shim#/$defs/health",
        auth=False,
    )
    def healthz() -> Any:
        return {"status": "ok", "driver": runtime().service.driver.name}

    @bp.get(schemas.BASE_PATH + "/openapi.json")
    def openapi() -> Any:
        """The OpenAPI 3.1 document, generated from provider-schema/ and the routes."""
        routes = [
            (rule.rule, rule.methods or (), current_app.view_functions[rule.endpoint])
            for rule in current_app.url_map.iter_rules()
        ]
        return schemas.openapi_document(routes, title="cloudbackup shim")

    return bp
