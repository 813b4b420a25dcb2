"""The shim's use cases: one Service facade over jobs that share one context (see facade.py).

Every change is recorded before storage is touched and its result recorded after, so that a crash at any
line leaves the database telling the truth or something that reconcile() finishes at the next start:

- a snapshot row is committed `queued` (the intent), the driver operation is started and its token
  committed with `inProgress`, then its result is committed `completed` or `failed`;
- deletions (retention R8, R9, DELETE of a snapshot) delete from storage first, then the row;
- at start, every unfinished operation is polled again, a `queued` snapshot with no token (the crash
  hit between intent and start) is started again, and every stored snapshot without a live row is
  deleted from storage;
- at start and periodically while serving, a stored snapshot whose row is missing or failed is deleted,
  and a completed row whose stored snapshot vanished is marked failed.

Requests that change only the database run in one transaction; those that drive storage run the
intent → act → result transactions above, with the driver calls outside any transaction.
"""

from shim.service.backups import BACKUP_CHANGE_IN_PROGRESS, Backup
from shim.service.common import (
    SnapshotJob,
    members,
    new_id,
    normalised_regions,
    preferred_region,
    region_specs,
    shape,
)
from shim.service.context import MANUAL_CLOCK_SETTING
from shim.service.engine import TAG_CLUSTER, TAG_CLUSTER_NAME, TAG_PROJECT, TAG_SNAPSHOT, TAG_TYPE
from shim.service.facade import Service
from shim.service.schedule import SHUTTING_DOWN
from shim.service.snapshots import SNAPSHOT_IN_PROGRESS

__all__ = [
    "BACKUP_CHANGE_IN_PROGRESS",
    "MANUAL_CLOCK_SETTING",
    "SHUTTING_DOWN",
    "SNAPSHOT_IN_PROGRESS",
    "TAG_CLUSTER",
    "TAG_CLUSTER_NAME",
    "TAG_PROJECT",
    "TAG_SNAPSHOT",
    "TAG_TYPE",
    "Backup",
    "Service",
    "SnapshotJob",
    "members",
    "new_id",
    "normalised_regions",
    "preferred_region",
    "region_specs",
    "shape",
]
