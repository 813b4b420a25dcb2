"""The interface every snapshot driver implements, shaped for long-running cloud operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

OperationState = Literal["queued", "inProgress", "succeeded", "failed"]


@dataclass(frozen=True)
class OperationStatus:
    """Where one driver operation stands; `result` is set once it succeeded, `error_*` once it failed."""

    state: OperationState
    result: dict[str, object] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


@dataclass(frozen=True)
class VolumeSpec:
    """One member's volume: what the control plane asks a driver to create."""

    project_id: str
    cluster_id: str
    cluster_name: str
    region: str
    member: int
    size_gb: int


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot found in storage, for reconciliation against the database."""

    handle: str
    snapshot_id: str | None  # from the tags/metadata that trace it to its record; None if untagged
    region: str
    # A copy not finished (cut short by a crash, or under way in another replica): the snapshot id it is
    # being taken for. Its row decides whether it is still wanted.
    unfinished_id: str | None = None


class DriverError(Exception):
    """A permanent failure from storage, with the provider's own code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Driver(Protocol):
    """Storage for volumes and snapshots.

    Volume calls are synchronous (they return once the volume exists or is gone). Snapshot and
    restore calls start an operation and return an opaque token that is stored in the database, so
    that a restarted process can `poll` it again. Every delete is idempotent: deleting what is already
    gone is not an error.
    """

    name: str
    cross_region_restore: bool
    """Whether `start_restore` can write a snapshot stored in one region onto a volume in another region.

    The local driver can (a file is a file); Azure creates a disk only from a snapshot in the disk's own
    region, so the azure driver cannot. When False, the control plane refuses such a restore up front
    (R10, RESTORE_INVALID) instead of letting the operation fail half-way through the target's members.
    """

    def create_volume(self, spec: VolumeSpec) -> str:
        """Create an empty volume of `spec.size_gb` GiB; return its handle (a path, an ARM id)."""

    def delete_volume(self, handle: str) -> None:
        """Delete a volume; a missing one is fine."""

    def resize_volume(self, handle: str, size_gb: int) -> None:
        """Grow a volume to `size_gb` GiB (shrinking is refused by the rules before this is called)."""

    def start_snapshot(
        self, *, volume_handle: str, region: str, snapshot_id: str, tags: dict[str, str]
    ) -> str:
        """Start a full-copy snapshot of a volume, stored in `region`; return an operation token.

        Starting a `snapshot_id` that storage holds already (a start repeated after a crash lost its
        token) finishes with that copy rather than taking a second one.

        On success `poll(token).result` holds `handle` (the stored snapshot's id or path),
        `storageSizeBytes` (bytes stored), `diskSizeBytes` (logical size of the source volume) and
        `checksum` (the snapshot's content digest, when the driver can compute one).
        """

    def start_restore(
        self, *, snapshot_handle: str, target_volume_handle: str, region: str, expected_checksum: str | None
    ) -> str:
        """Start writing a snapshot's content onto a target volume in `region`; return an operation token.

        On success `poll(token).result` holds `volumeHandle` (the target volume's handle afterwards,
        which may be a new resource) and `checksum` (the target's content digest, when computable).
        A snapshot whose content no longer matches `expected_checksum` makes the operation fail.
        """

    def poll(self, token: str) -> OperationStatus:
        """Return the current state of an operation started by this driver (also after a restart)."""

    def delete_snapshot(self, handle: str) -> None:
        """Delete a stored snapshot; a missing one is fine."""

    def snapshot_exists(self, handle: str) -> bool:
        """Whether a stored snapshot is still in storage."""

    def list_snapshots(self) -> list[StoredSnapshot]:
        """Every snapshot in storage that this system made (found by its tags or layout)."""

    def close(self) -> None:
        """Release pools and sessions."""
