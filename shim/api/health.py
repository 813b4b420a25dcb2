"""What needs no key: GET /healthz (liveness), GET /readyz (readiness) and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from sqlalchemy.exc import SQLAlchemyError

from shim import schemas
from shim.api.common import runtime
from shim.errors import ApiError
from shim.schemas import operation
from shim.store import migrate

NOT_READY = "NOT_READY"


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

    @bp.get("/readyz")
    @operation(
        summary="Whether the shim can serve: 503 unless its database answers and is at its schema.",
        response="urn:cloudbackup:shim#/$defs/readiness",
        auth=False,
    )
    def readyz() -> Any:
        try:
            state = migrate.state(runtime().service.store)
        except SQLAlchemyError as error:
            raise ApiError(
                503,
                NOT_READY,
                f"the database does not answer ({type(error).__name__}); check that it runs and is reachable",
            ) from error
        except migrate.SchemaError as error:
            # A schema this version cannot even place (an unknown 0.1.0 schema_version): it says why.
            raise ApiError(503, NOT_READY, str(error)) from error
        if state.status != "current":
            problem = (
                state.problem() or f"the database schema is {state.status}: run `cloudbackup db upgrade`"
            )
            raise ApiError(503, NOT_READY, problem)
        return {"status": "ready", "schemaRevision": state.revision}

    @bp.get(schemas.BASE_PATH + "/openapi.json")
    def openapi() -> Any:
        """The OpenAPI 3.1 document, generated from provider-schema/ and the routes."""
        routes = [
            (rule.rule, rule.methods or (), current_app.view_functions[rule.endpoint])
            for rule in current_app.url_map.iter_rules()
        ]
        return schemas.openapi_document(routes, title="cloudbackup shim")

    return bp
