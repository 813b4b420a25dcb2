"""Deletion protection: DELETE of a protected backup or cluster is refused, since R9 deletes its snapshots."""

from __future__ import annotations

from shim.errors import ApiError
from shim.store.models import Cluster

DELETION_PROTECTED = "DELETION_PROTECTED"


def check_disable_backup(cluster: Cluster) -> None:
    """Refuse to disable a protected backup: every snapshot of the cluster would go at once."""
    if cluster.backup_method is not None and cluster.backup_deletion_protection:
        raise ApiError(
            409,
            DELETION_PROTECTED,
            f"The backup of cluster '{cluster.name}' has deletion protection, and disabling it deletes every "
            f"snapshot of the cluster. Turn it off first (PUT .../clusters/{cluster.name}/backup "
            f'{{"method": "{cluster.backup_method}", "deletionProtection": false}}), then disable backup.',
            ["/deletionProtection"],
        )


def check_terminate(cluster: Cluster) -> None:
    """Refuse to terminate a protected cluster, or one whose backup is protected (R9 would purge it)."""
    if cluster.deletion_protection:
        raise ApiError(
            409,
            DELETION_PROTECTED,
            f"Cluster '{cluster.name}' has deletion protection, and terminating it deletes its volumes and "
            f"every snapshot. Turn it off first (PATCH .../clusters/{cluster.name} "
            f'{{"deletionProtection": false}}), then terminate it.',
            ["/deletionProtection"],
        )
    check_disable_backup(cluster)
