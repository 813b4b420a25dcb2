"""The manual clock, /admin/clock: registered only when the shim runs with --manual-clock."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from shim import schemas
from shim.api.common import body, principal, service
from shim.clock import format_time
from shim.errors import ORG_API_KEY_REQUIRED, ApiError
from shim.schemas import operation

CLOCK = "urn:cloudbackup:shim#/$defs/clock"


def blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__)

    @bp.get("/admin/clock")
    @operation(summary="Read the manual clock (only with --manual-clock).", response=CLOCK)
    def get_clock() -> Any:
        return {"now": format_time(service().now())}

    @bp.post("/admin/clock")
    @operation(
        summary=(
            "Advance the manual clock (organization key; at most 366 days per call; one advance at a "
            "time, 409 CLOCK_ADVANCE_IN_PROGRESS otherwise); every schedule slot passed is taken, in "
            "order, before the answer."
        ),
        request=schemas.CLOCK_ADVANCE,
        response=CLOCK,
        errors=(400, 401, 403, 409),
    )
    def advance_clock() -> Any:
        caller = principal()
        if not caller.is_org:
            # The clock moves every project's schedule: not one project's key to turn.
            raise ApiError(
                403,
                ORG_API_KEY_REQUIRED,
                f"API key {caller.public_key} belongs to one project; moving the clock moves every "
                "project's schedule and needs an organization key (`cloudbackup keys create` without "
                "--project).",
            )
        data = body(schemas.CLOCK_ADVANCE)
        return {"now": format_time(service().advance(int(data["advanceSeconds"])))}

    return bp
