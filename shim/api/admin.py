"""The manual clock, /admin/clock: registered only when the shim runs with --manual-clock."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from shim import schemas
from shim.api.common import body, service
from shim.clock import format_time
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
        summary="Advance the manual clock; every schedule slot passed is taken, in order, before the answer.",
        request=schemas.CLOCK_ADVANCE,
        response=CLOCK,
    )
    def advance_clock() -> Any:
        data = body(schemas.CLOCK_ADVANCE)
        return {"now": format_time(service().advance(int(data["advanceSeconds"])))}

    return bp
