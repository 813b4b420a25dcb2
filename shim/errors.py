"""The one error shape of the whole API, and the handlers that answer every failure with it."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable
from http import HTTPStatus

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from contract.errors import (
    BACKUP_NOT_ENABLED,
    CANNOT_DELETE_GROUP_WITH_CLUSTERS,
    CLUSTER_NOT_FOUND,
    DIGEST_NONCE_REUSED,
    DUPLICATE_CLUSTER_NAME,
    DUPLICATE_PROJECT_NAME,
    GROUP_NOT_FOUND,
    INSUFFICIENT_STORAGE,
    INVALID_ATTRIBUTE,
    INVALID_QUERY_PARAMETER,
    MALFORMED_REQUEST,
    METHOD_NOT_ALLOWED,
    ORG_API_KEY_REQUIRED,
    READ_ONLY_API_KEY,
    RESOURCE_NOT_FOUND,
    RESTORE_JOB_NOT_FOUND,
    SNAPSHOT_NOT_FOUND,
    STORAGE_ERROR,
    UNAUTHORIZED,
    UNEXPECTED_ERROR,
    error_body,
)
from contract.rules import Refusal

log = logging.getLogger(__name__)

# The codes live in contract/ (the provider reads them too); importing them from here keeps working.
__all__ = [
    "BACKUP_NOT_ENABLED",
    "CANNOT_DELETE_GROUP_WITH_CLUSTERS",
    "CLUSTER_NOT_FOUND",
    "DIGEST_NONCE_REUSED",
    "DUPLICATE_CLUSTER_NAME",
    "DUPLICATE_PROJECT_NAME",
    "GROUP_NOT_FOUND",
    "INSUFFICIENT_STORAGE",
    "INVALID_ATTRIBUTE",
    "INVALID_QUERY_PARAMETER",
    "MALFORMED_REQUEST",
    "METHOD_NOT_ALLOWED",
    "ORG_API_KEY_REQUIRED",
    "READ_ONLY_API_KEY",
    "RESOURCE_NOT_FOUND",
    "RESTORE_JOB_NOT_FOUND",
    "SNAPSHOT_NOT_FOUND",
    "STORAGE_ERROR",
    "UNAUTHORIZED",
    "UNEXPECTED_ERROR",
    "ApiError",
    "error_body",
    "install_error_handlers",
    "not_found",
    "storage_is_full",
]


class ApiError(Exception):
    """A failure the API answers with its error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        parameters: Iterable[str] = (),
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.parameters = [p for p in parameters if p]
        self.headers = headers or []

    @classmethod
    def from_refusals(cls, refusals: list[Refusal]) -> ApiError:
        """The first refusal decides code and status; every refusal's detail and field are reported."""
        first = refusals[0]
        detail = " ".join(r.detail for r in refusals) if len(refusals) > 1 else first.detail
        return cls(first.status, first.code, detail, [r.field for r in refusals if r.field])


def error_response(error: ApiError) -> Response:
    response = jsonify(error_body(error.status, error.code, error.detail, error.parameters))
    response.status_code = error.status
    for name, value in error.headers:
        response.headers.add(name, value)
    return response


def not_found(code: str, what: str) -> ApiError:
    return ApiError(404, code, what)


# SQLITE_FULL; PostgreSQL's disk_full; the OS's "no space" and "file too large" (a size limit).
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_is_full(error: BaseException) -> bool:
    """Whether an error, or the database driver's error it wraps, says the disk is full."""
    for cause in (error, getattr(error, "orig", None), error.__cause__):
        if cause is None:
            continue
        if getattr(cause, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if _PG_DISK_FULL in (getattr(cause, "sqlstate", None), getattr(cause, "pgcode", None)):
            return True
        if isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS:
            return True
    return False


def install_error_handlers(app: Flask) -> None:
    """Answer every error in JSON, never HTML: the API's own, HTTP ones, and unexpected ones."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            code = RESOURCE_NOT_FOUND
            detail = (
                f"No route answers {request.path}. The API lives under /api/atlas/v1.0 at the shim's "
                f"root (such as http://127.0.0.1:8080/api/atlas/v1.0/groups)."
            )
        elif status == 405:
            allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or []))
            code, detail = METHOD_NOT_ALLOWED, f"This path does not accept that method; it accepts {allowed}."
        elif status == 400:
            code, detail = MALFORMED_REQUEST, "The request could not be read: " + (error.description or "")
        elif status == 413:
            code, detail = MALFORMED_REQUEST, "The request body is too large."
        else:
            code, detail = HTTPStatus(status).name, error.description or HTTPStatus(status).phrase
        response = error_response(ApiError(status, code, detail))
        if status == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods or [])
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if storage_is_full(error):
            # The transaction was rolled back: the request changed nothing, and can be sent again once
            # there is room.
            log.error("the database's storage is full: %s", error)
            return error_response(
                ApiError(
                    507,
                    INSUFFICIENT_STORAGE,
                    "The shim's database storage is full, so the request was not carried out and nothing "
                    "changed. Free space on the data directory's disk (or the database server's), then "
                    "send the request again.",
                )
            )
        log.exception("unexpected error while answering a request")
        return error_response(
            ApiError(500, UNEXPECTED_ERROR, "An unexpected error occurred; the shim's log has the details.")
        )
