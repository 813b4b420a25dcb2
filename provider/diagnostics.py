"""Errors as Terraform diagnostics: a summary naming what went wrong and a detail saying how to fix it."""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from tf.utils import Diagnostics

from contract.rules import Refusal
from provider.client import ApiError, KeyScopeError, Unreachable

Path = list[Any]

# A summary per errorCode, in words a Terraform user understands; the shim's detail says how to fix it.
SUMMARIES = {
    "TIER_NOT_SUPPORTED": "Cloud provider snapshots are not available for M0, M2 and M5 clusters",
    "PROVIDER_NOT_SUPPORTED": "Cloud provider snapshots are available for Azure-backed clusters only",
    "SHARDED_NOT_SUPPORTED": "Cloud provider snapshots are available for replica set clusters only",
    "BACKUP_METHOD_LOCKED": "The project is locked to another backup method",
    "INVALID_REGION": "Invalid region",
    "INVALID_REGION_PRIORITY": "Invalid region priorities",
    "DISK_SIZE_DECREASE_NOT_SUPPORTED": "Disk size cannot shrink",
    "RESTORE_INVALID": "The snapshot cannot be restored into that target",
    "USER_UNAUTHORIZED": "The cloudbackup API refused the API key",
    "READ_ONLY_API_KEY": "The API key is read-only",
    "ORG_API_KEY_REQUIRED": "Creating a project needs an organization API key",
    "BACKUP_NOT_ENABLED": "The cluster has no backup",
    "CANNOT_DELETE_GROUP_WITH_CLUSTERS": "The project still has clusters",
    "DUPLICATE_CLUSTER_NAME": "A cluster of that name already exists in the project",
    "DUPLICATE_PROJECT_NAME": "A project of that name already exists",
    "RESOURCE_NOT_FOUND": "The cloudbackup API has no such path",
}


# The API's words in the shim's details, as the Terraform attribute or resource a user changes instead.
API_WORDS = {
    "diskSizeGB": "disk_size_gb",
    "instanceSizeName": "instance_size",
    "providerName": "provider_name",
    "clusterType": "cluster_type",
    "electableNodes": "electable_nodes",
    "targetClusterName": "target_cluster_name",
    "targetGroupId": "target_project_id",
    "snapshotId": "snapshot_id",
}
_API_WORD = re.compile(r"\b(" + "|".join(API_WORDS) + r")\b")
_API_CALLS = (
    (
        re.compile(r"PUT \.\.\./clusters/([^/\s]+)/backup \{\"method\": \"([A-Z_]+)\"\}"),
        r'add a cloudbackup_cluster_backup resource with cluster_name = "\1" (method = "\2")',
    ),
    (re.compile(r"\(DELETE \.\.\./clusters/NAME\)"), "(destroy their cloudbackup_cluster resources)"),
)


def in_terraform_words(detail: str) -> str:
    """A shim detail with API field names and calls replaced by the attributes and resources to change."""
    for pattern, replacement in _API_CALLS:
        detail = pattern.sub(replacement, detail)
    return _API_WORD.sub(lambda m: API_WORDS[m.group(1)], detail)


def summary_for(code: str, fallback: str) -> str:
    return SUMMARIES.get(code, fallback)


def field_path(pointer: str | None, fields: Mapping[str, Path]) -> Path | None:
    """The attribute path for a JSON pointer into an API body: the longest mapped prefix wins."""
    if not pointer:
        return None
    best: str | None = None
    for prefix in fields:
        if (pointer == prefix or pointer.startswith(prefix.rstrip("/") + "/")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return list(fields[best]) if best is not None else None


def add_refusal(
    diags: Diagnostics, refusal: Refusal, fields: Mapping[str, Path], path: Path | None = None
) -> None:
    """A rule's refusal at plan time, on the attribute at fault."""
    diags.add_error(
        summary_for(refusal.code, refusal.code.replace("_", " ").capitalize()),
        in_terraform_words(refusal.detail),
        path=path if path is not None else field_path(refusal.field, fields),
    )


def add_api_error(
    diags: Diagnostics, error: ApiError, action: str, fields: Mapping[str, Path] | None = None
) -> None:
    """An error answer of the shim: what failed, the shim's detail, and where it came from."""
    summary = SUMMARIES.get(error.code) or f"{action} failed: {error.code}"
    hint = ""
    if error.status == 401:
        hint = (
            " Check public_key and private_key (or CLOUDBACKUP_PUBLIC_KEY and CLOUDBACKUP_PRIVATE_KEY); "
            "`cloudbackup keys create` makes a new pair."
        )
    elif error.status == 403:
        hint = " Use an API key that reaches this project, or an organization key."
    detail = (
        f"{in_terraform_words(error.detail)}{hint}\n\n"
        f"({action}: HTTP {error.status} from {error.method} {error.path})"
    )
    path = None
    for pointer in error.parameters:
        path = field_path(pointer, fields or {})
        if path:
            break
    diags.add_error(summary, detail, path=path)


def add_unreachable(diags: Diagnostics, error: Unreachable, action: str) -> None:
    diags.add_error(
        "Cannot reach the cloudbackup API",
        f"{action}: no answer from {error.url} ({error.cause}). Check that `cloudbackup serve` is running "
        f"and that the provider's url (or CLOUDBACKUP_URL) points at it.",
    )


def add_key_scope(diags: Diagnostics, error: KeyScopeError, action: str) -> None:
    diags.add_error(
        "The API key cannot reach this project",
        f"{action}: public_key {error.public_key} is a key of project {error.key_project} alone, and this "
        f"resource is in project {error.project_id}. Set public_key and private_key (or "
        f"CLOUDBACKUP_PUBLIC_KEY and CLOUDBACKUP_PRIVATE_KEY) to a key of project {error.project_id} or "
        f"to an organization key (`cloudbackup keys create`). Nothing was removed from the state.",
    )


def add_exception(
    diags: Diagnostics, exc: BaseException, action: str, fields: Mapping[str, Path] | None = None
) -> None:
    """Any failure inside a call, as one diagnostic: API errors as such, bugs with their traceback."""
    if isinstance(exc, ApiError):
        add_api_error(diags, exc, action, fields)
    elif isinstance(exc, KeyScopeError):
        add_key_scope(diags, exc, action)
    elif isinstance(exc, Unreachable):
        add_unreachable(diags, exc, action)
    elif isinstance(exc, TimeoutError):
        diags.add_error(
            f"{action} timed out",
            f"{action} did not finish within the time allowed. Raise the resource's timeouts, for example "
            f'`timeouts {{ create = "2h" }}`, then apply again; the work may still finish on the shim.',
        )
    else:
        diags.add_error(
            f"{action} failed inside the cloudbackup provider",
            "This is a bug in terraform-provider-cloudbackup; please report it with this text:\n\n"
            + "".join(traceback.format_exception(exc)),
        )


def to_pb(diags: Diagnostics) -> Sequence[Any]:
    return diags.to_pb()
