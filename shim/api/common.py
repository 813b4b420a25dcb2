"""What every API area shares: the runtime, the caller's key, bodies, paging and flags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request

from contract import rules
from shim import schemas
from shim.errors import GROUP_NOT_FOUND, INVALID_QUERY_PARAMETER, MALFORMED_REQUEST, ApiError

if TYPE_CHECKING:
    from shim.auth import DigestAuth, Principal
    from shim.config import Config
    from shim.scheduler import Scheduler
    from shim.service import Service
    from shim.store.leases import LeaseKeeper

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
DEFAULT_ITEMS_PER_PAGE = 100
MAX_ITEMS_PER_PAGE = 500


@dataclass
class Runtime:
    """What create_app builds once and every request uses."""

    config: Config
    service: Service
    auth: DigestAuth
    scheduler: Scheduler | None = None
    lease_keeper: LeaseKeeper | None = None


_ENCODED_SLASH = re.compile(r"%2f", re.IGNORECASE)


def refuse_encoded_slashes() -> None:
    """Refuse a path with %2F in it: WSGI decodes it into PATH_INFO, where it would split a segment in two
    (`clusters/c1%2fbackup` would reach c1's backup). No name of this API may contain a slash."""
    environ = request.environ
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""
    if _ENCODED_SLASH.search(raw.partition("?")[0]):
        raise ApiError(
            400,
            MALFORMED_REQUEST,
            "The path contains an encoded slash (%2F); names in this API have no slashes, so send each "
            "path segment without one.",
        )


def runtime() -> Runtime:
    return current_app.extensions["cloudbackup"]


def service() -> Service:
    return runtime().service


def principal() -> Principal:
    return g.principal


def reach(project_id: str) -> str:
    """The project id if the caller's key reaches it; otherwise 404, as if it did not exist."""
    if not OBJECT_ID.match(project_id) or not principal().can_reach(project_id):
        raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
    return project_id


def body(ref: str) -> dict[str, Any]:
    """The request body, read as a JSON object and validated against its schema in provider-schema/."""
    data = schemas.parse_body(request.get_data(cache=True), request.content_type)
    for where, key in schemas.duplicate_keys(data):
        if where.endswith("/regionsConfig"):
            refusal = rules.duplicate_region_refusal([key, key])
            assert refusal is not None
            raise ApiError.from_refusals([refusal])
        raise ApiError(
            400,
            MALFORMED_REQUEST,
            f"Field {where}/{schemas.escape(key)} appears twice; give it once.",
            [f"{where}/{schemas.escape(key)}"],
        )
    schemas.validate(data, ref)
    return data


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            400,
            INVALID_QUERY_PARAMETER,
            f"Query parameter {name} must be a whole number from {low} to {high}.",
            [name],
        )
    return value


def page() -> tuple[int, int]:
    """(offset, limit) from Atlas's pageNum (from 1) and itemsPerPage (default 100, at most 500)."""
    per_page = _int_arg("itemsPerPage", DEFAULT_ITEMS_PER_PAGE, 1, MAX_ITEMS_PER_PAGE)
    number = _int_arg("pageNum", 1, 1, 1_000_000)
    return (number - 1) * per_page, per_page


def flag(name: str) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return False
    if raw.lower() in ("true", "1", ""):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ApiError(400, INVALID_QUERY_PARAMETER, f"Query parameter {name} must be true or false.", [name])
