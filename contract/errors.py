"""The API's one error shape and its errorCodes: the shim answers with them, the provider reads them."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

# errorCodes of the API besides the rules' own (contract/rules.py names those).
INVALID_ATTRIBUTE = "INVALID_ATTRIBUTE"
INVALID_QUERY_PARAMETER = "INVALID_QUERY_PARAMETER"
MALFORMED_REQUEST = "MALFORMED_REQUEST"
GROUP_NOT_FOUND = "GROUP_NOT_FOUND"
CLUSTER_NOT_FOUND = "CLUSTER_NOT_FOUND"
SNAPSHOT_NOT_FOUND = "SNAPSHOT_NOT_FOUND"
RESTORE_JOB_NOT_FOUND = "RESTORE_JOB_NOT_FOUND"
DUPLICATE_PROJECT_NAME = "DUPLICATE_PROJECT_NAME"
DUPLICATE_CLUSTER_NAME = "DUPLICATE_CLUSTER_NAME"
CANNOT_DELETE_GROUP_WITH_CLUSTERS = "CANNOT_DELETE_GROUP_WITH_CLUSTERS"
BACKUP_NOT_ENABLED = "BACKUP_NOT_ENABLED"
UNAUTHORIZED = "USER_UNAUTHORIZED"
READ_ONLY_API_KEY = "READ_ONLY_API_KEY"
ORG_API_KEY_REQUIRED = "ORG_API_KEY_REQUIRED"
# A path no route answers: never one of the *_NOT_FOUND codes above, which say that a resource is gone.
RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
STORAGE_ERROR = "STORAGE_ERROR"
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"
# A Digest (nonce, nc) pair answered a second time: a replayed request.
DIGEST_NONCE_REUSED = "DIGEST_NONCE_REUSED"
# The database's disk (or its size limit) is full.
INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE"

# The errorCodes that say "this resource is gone": the only answers on which a client may drop a resource
# from its state or count a delete as done. Any other 404 (a wrong url, say) is an error.
GONE_CODES = frozenset({GROUP_NOT_FOUND, CLUSTER_NOT_FOUND, SNAPSHOT_NOT_FOUND, RESTORE_JOB_NOT_FOUND})


def error_body(status: int, code: str, detail: str, parameters: Iterable[str] = ()) -> dict[str, Any]:
    """The error shape: {"error", "errorCode", "detail", "reason"} plus the fields at fault, if any."""
    body: dict[str, Any] = {
        "error": status,
        "errorCode": code,
        "detail": detail,
        "reason": HTTPStatus(status).phrase,
    }
    params = list(parameters)
    if params:
        body["parameters"] = params
    return body
