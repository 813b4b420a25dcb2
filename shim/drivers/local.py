"""The local driver: volumes are sparse files under the data directory, snapshots full copies beside them.

Long because the crash-safe file protocol (partial files, sidecars, directory syncs,
locks) is one piece that must be read whole.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from contract.files import write_atomic
from shim.drivers.base import DriverError, OperationStatus, StoredSnapshot, VolumeSpec
from shim.drivers.digest import content_digest
from shim.drivers.sparse_copy import copy_with_digest

GIB = 1024**3
VOLUMES = "volumes"
SNAPSHOTS = "snapshots"
OPERATIONS = "operations"
SNAPSHOT_SUFFIX = ".snap"
SIDECAR_SUFFIX = ".json"
PARTIAL_SUFFIX = ".partial"
SIDECAR_FORMAT = 1
# Ids, regions and project/cluster ids become path components: no dots (the snapshot id is the part of a
# file name before its first dot), no separators.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_MEMBER_FILE = re.compile(r"^member-[0-9]+\.img$")
_OPERATION_ID = re.compile(r"^[0-9a-f]{32}$")
# Snapshots remembered between their start and first poll (see LocalDriver._taken): about 10 batches.
TAKEN_REMEMBERED = 5000
INTERRUPTED_MESSAGE = (
    "The shim stopped during the operation, so it did not finish; nothing of it is kept. Start it again."
)


class _Failed(Exception):
    """An expected failure of an operation, reported by poll rather than raised."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class LocalDriver:
    """Volumes and full-copy snapshots as files under `data_dir`; every operation finishes at once.

    Layout (handles are these paths relative to `data_dir`, so the directory can be moved):
      volumes/<region>/<project_id>/<cluster_id>/member-<n>.img   a sparse file of size_gb GiB
      snapshots/<region>/<snapshot_id>.snap                       a full copy of a volume (holes kept)
      snapshots/<region>/<snapshot_id>.json                       its sidecar: checksum, sizes, source, tags
      operations/<key>.json                                       outcome of a restore or a failed snapshot,
                                                                  until forget_operation (result recorded)

    With `durable` (the default) data, sidecars and directories are fsynced before an operation is
    reported done; turn it off only for data nobody needs after a power cut. `bytes_per_gb` is what one
    GB of `size_gb` makes (1 GiB); tests and benchmarks may shrink it to have many small volumes.
    """

    name = "local"
    cross_region_restore = True  # a snapshot file can be copied onto a volume file of any region

    def __init__(
        self, data_dir: str | os.PathLike[str], *, durable: bool = True, bytes_per_gb: int = GIB
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.durable = durable
        self.bytes_per_gb = bytes_per_gb
        # Outcomes that could not be written down (a full disk), so this process can still answer poll.
        self._unsaved: dict[str, OperationStatus] = {}
        # Snapshots this process has just taken, durably, until their first poll: that poll then needs
        # no read of the sidecar written a moment before. Bounded; a forgotten one is read from disk.
        self._taken: dict[str, OperationStatus] = {}
        self._taken_lock = threading.Lock()

    # Volumes --------------------------------------------------------------------------------------

    def create_volume(self, spec: VolumeSpec) -> str:
        for value in (spec.region, spec.project_id, spec.cluster_id):
            _check_name(value)
        if spec.member < 0 or spec.size_gb <= 0:
            raise ValueError(f"bad volume spec: member {spec.member}, size {spec.size_gb} GiB")
        handle = f"{VOLUMES}/{spec.region}/{spec.project_id}/{spec.cluster_id}/member-{spec.member}.img"
        path = self._volume_path(handle)
        size = spec.size_gb * self.bytes_per_gb
        for attempt in range(3):
            created = self._makedirs(path.parent)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                # Created before (a retry after a restart): keep its data, only make sure of the size.
                if path.stat().st_size < size:
                    os.truncate(path, size)
                return handle
            except FileNotFoundError:
                # A concurrent delete_volume removed the empty directory between makedirs and open.
                if attempt == 2:
                    raise
                continue
            try:
                os.ftruncate(fd, size)
                self._fsync(fd)
            finally:
                os.close(fd)
            self._fsync_dir(path.parent)
            for directory in created:
                self._fsync_dir(directory.parent)
            break
        return handle

    def delete_volume(self, handle: str) -> None:
        path = self._volume_path(handle)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        else:
            self._fsync_dir(path.parent)
        self._remove_empty_dirs(path.parent, self.data_dir / VOLUMES)

    def resize_volume(self, handle: str, size_gb: int) -> None:
        path = self._volume_path(handle)
        try:
            current = path.stat().st_size
        except FileNotFoundError:
            raise DriverError("VOLUME_NOT_FOUND", f"volume {handle} does not exist") from None
        size = size_gb * self.bytes_per_gb
        if size < current:
            raise DriverError(
                "SHRINK_NOT_SUPPORTED", f"volume {handle} holds {current} bytes; it cannot shrink to {size}"
            )
        if size > current:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
                self._fsync(fd)
            finally:
                os.close(fd)

    # Snapshots ------------------------------------------------------------------------------------

    def start_snapshot(
        self, *, volume_handle: str, region: str, snapshot_id: str, tags: dict[str, str]
    ) -> str:
        _check_name(region)
        _check_name(snapshot_id)
        token = f"snapshot:{region}/{snapshot_id}"
        if self._complete_snapshot(region, snapshot_id) is not None:
            return token  # taken before (a retry after a restart): never copy twice
        self._forget_outcome(token)
        try:
            metadata = self._snapshot(volume_handle, region, snapshot_id, tags)
        except _Failed as failure:
            self._record_outcome(token, _failed(failure.code, failure.message))
        else:
            if metadata is not None:
                with self._taken_lock:
                    self._taken[token] = _succeeded(region, snapshot_id, metadata)
                    while len(self._taken) > TAKEN_REMEMBERED:
                        del self._taken[next(iter(self._taken))]
        return token

    def _snapshot(
        self, volume_handle: str, region: str, snapshot_id: str, tags: dict[str, str]
    ) -> dict[str, Any] | None:
        """Take the snapshot; its sidecar's content once data and sidecar are durable under their final
        names, or None if another thread or process took this very snapshot meanwhile."""
        source = self._volume_path(volume_handle)
        directory = self.data_dir / SNAPSHOTS / region
        data_path = directory / f"{snapshot_id}{SNAPSHOT_SUFFIX}"
        partial = data_path.with_name(data_path.name + PARTIAL_SUFFIX)
        sidecar = directory / f"{snapshot_id}{SIDECAR_SUFFIX}"
        try:
            src_fd = os.open(source, os.O_RDONLY)
        except FileNotFoundError:
            raise _Failed("VOLUME_NOT_FOUND", f"volume {volume_handle} does not exist") from None
        try:
            for created in self._makedirs(directory):
                self._fsync_dir(created.parent)
            size = os.fstat(src_fd).st_size
            locked = self._lock_partial(partial, region, snapshot_id)
        except OSError as error:
            os.close(src_fd)
            raise _from_os_error(error, f"snapshot {snapshot_id} of {volume_handle}") from error
        if locked is None:
            os.close(src_fd)
            return None  # another thread or process took this very snapshot while we waited
        dst_fd = locked
        try:
            os.ftruncate(dst_fd, 0)  # what a crashed attempt left
            copy = copy_with_digest(src_fd, dst_fd, size, durable=self.durable)
            stored = os.fstat(dst_fd).st_blocks * 512
            metadata = {
                "format": SIDECAR_FORMAT,
                "snapshotId": snapshot_id,
                "region": region,
                "sourceVolume": _normal(volume_handle),
                "checksum": copy.checksum,
                "diskSizeBytes": size,
                "storageSizeBytes": stored,
                "reflinked": copy.reflinked,
                "tags": dict(tags),
                "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            # The sidecar goes in first: a data file under its final name always has its sidecar. One
            # directory sync covers both renames; success is reported only after it.
            self._write_json(sidecar, metadata, sync_dir=False)
            os.replace(partial, data_path)
            self._fsync_dir(directory)
            return metadata
        except OSError as error:
            # Everything of this id is from this attempt (a complete snapshot returns before copying),
            # so a failure leaves nothing behind, not even a finished file whose directory sync failed.
            for leftover in (partial, sidecar.with_name(sidecar.name + PARTIAL_SUFFIX), data_path, sidecar):
                _unlink(leftover)
            raise _from_os_error(error, f"snapshot {snapshot_id} of {volume_handle}") from error
        finally:
            os.close(dst_fd)
            os.close(src_fd)

    def _lock_partial(self, partial: Path, region: str, snapshot_id: str) -> int | None:
        """Open and lock the snapshot's partial file; None if the snapshot was finished meanwhile.

        The lock is held until the data file has its final name, so a second taker of the same snapshot
        waits and then finds it done, and poll tells a copy under way from one a crash cut short.
        """
        while True:
            fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    ours = os.stat(partial).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    ours = False
            except BaseException:
                os.close(fd)
                raise
            if ours:
                return fd
            # The holder renamed (finished) or removed the file while we waited: that inode is not ours.
            os.close(fd)
            if self._complete_snapshot(region, snapshot_id) is not None:
                return None

    def delete_snapshot(self, handle: str) -> None:
        region, snapshot_id = self._snapshot_name(handle)
        with self._taken_lock:
            self._taken.pop(f"snapshot:{region}/{snapshot_id}", None)
        directory = self.data_dir / SNAPSHOTS / region
        # Data first: a crash in between leaves a sidecar alone, which list_snapshots reports as an orphan.
        names = [
            f"{snapshot_id}{SNAPSHOT_SUFFIX}",
            f"{snapshot_id}{SNAPSHOT_SUFFIX}{PARTIAL_SUFFIX}",
            f"{snapshot_id}{SIDECAR_SUFFIX}",
            f"{snapshot_id}{SIDECAR_SUFFIX}{PARTIAL_SUFFIX}",
        ]
        removed = [_unlink(directory / name) for name in names]
        if any(removed):
            self._fsync_dir(directory)

    def snapshot_exists(self, handle: str) -> bool:
        region, snapshot_id = self._snapshot_name(handle)
        return self._complete_snapshot(region, snapshot_id) is not None

    def snapshot_metadata(self, handle: str) -> dict[str, Any] | None:
        """The sidecar of a complete snapshot (checksum, sizes, source, tags, whether reflinked)."""
        region, snapshot_id = self._snapshot_name(handle)
        return self._complete_snapshot(region, snapshot_id)

    def list_snapshots(self) -> list[StoredSnapshot]:
        """Complete snapshots with their ids, and leftovers of crashed ones with snapshot_id None."""
        found: list[StoredSnapshot] = []
        root = self.data_dir / SNAPSHOTS
        if not root.is_dir():
            return found
        for region_dir in sorted(root.iterdir()):
            if not region_dir.is_dir() or not _NAME.match(region_dir.name):
                continue
            stems = {entry.name.split(".", 1)[0] for entry in region_dir.iterdir() if entry.is_file()}
            for stem in sorted(stem for stem in stems if _NAME.match(stem)):
                metadata = self._complete_snapshot(region_dir.name, stem)
                found.append(
                    StoredSnapshot(
                        handle=f"{SNAPSHOTS}/{region_dir.name}/{stem}{SNAPSHOT_SUFFIX}",
                        snapshot_id=None if metadata is None else str(metadata["snapshotId"]),
                        region=region_dir.name,
                        unfinished_id=stem if metadata is None else None,
                    )
                )
        return found

    def _complete_snapshot(self, region: str, snapshot_id: str) -> dict[str, Any] | None:
        """The sidecar of a snapshot whose data file is in place; None for a missing or unfinished one."""
        directory = self.data_dir / SNAPSHOTS / region
        if not (directory / f"{snapshot_id}{SNAPSHOT_SUFFIX}").is_file():
            return None
        try:
            metadata = json.loads((directory / f"{snapshot_id}{SIDECAR_SUFFIX}").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("checksum"), str):
            return None
        return metadata

    # Restores -------------------------------------------------------------------------------------

    def start_restore(
        self, *, snapshot_handle: str, target_volume_handle: str, region: str, expected_checksum: str | None
    ) -> str:
        _check_name(region)
        token = f"restore:{uuid.uuid4().hex}"
        try:
            result = self._restore(snapshot_handle, target_volume_handle, expected_checksum)
        except _Failed as failure:
            self._record_outcome(token, _failed(failure.code, failure.message))
        else:
            self._record_outcome(token, OperationStatus(state="succeeded", result=result))
        return token

    def _restore(self, snapshot_handle: str, target_handle: str, expected: str | None) -> dict[str, object]:
        region, snapshot_id = self._snapshot_name(snapshot_handle)
        target = self._volume_path(target_handle)
        metadata = self._complete_snapshot(region, snapshot_id)
        if metadata is None:
            raise _Failed("SNAPSHOT_NOT_FOUND", f"snapshot {snapshot_handle} is not in storage")
        snapshot = self.data_dir / SNAPSHOTS / region / f"{snapshot_id}{SNAPSHOT_SUFFIX}"
        recorded = metadata["checksum"]
        try:
            # Verified before the target is touched, so a bad snapshot leaves the target as it was.
            actual = content_digest(snapshot)
            if actual != recorded or (expected is not None and actual != expected):
                raise _Failed(
                    "SNAPSHOT_CORRUPT",
                    f"snapshot {snapshot_id} no longer matches the checksum recorded when it was taken "
                    f"({expected or recorded}); its content digests to {actual}",
                )
            src_fd = os.open(snapshot, os.O_RDONLY)
            try:
                try:
                    dst_fd = os.open(target, os.O_RDWR)
                except FileNotFoundError:
                    raise _Failed("VOLUME_NOT_FOUND", f"volume {target_handle} does not exist") from None
                try:
                    size = os.fstat(src_fd).st_size
                    target_size = os.fstat(dst_fd).st_size
                    if target_size < size:
                        raise _Failed(
                            "TARGET_TOO_SMALL",
                            f"volume {target_handle} holds {target_size} bytes, the snapshot {size}",
                        )
                    # Dropping the old content first makes every byte the snapshot does not write a hole.
                    os.ftruncate(dst_fd, 0)
                    copy = copy_with_digest(src_fd, dst_fd, size, dst_size=target_size, durable=self.durable)
                finally:
                    os.close(dst_fd)
            finally:
                os.close(src_fd)
        except OSError as error:
            raise _from_os_error(error, f"restore of {snapshot_id} into {target_handle}") from error
        if copy.checksum != actual:
            raise _Failed(
                "RESTORE_MISMATCH",
                f"volume {target_handle} digests to {copy.checksum} after the restore, "
                f"the snapshot to {actual}",
            )
        return {"volumeHandle": _normal(target_handle), "checksum": copy.checksum}

    # Operations -----------------------------------------------------------------------------------

    def poll(self, token: str) -> OperationStatus:
        kind, _, rest = token.partition(":")
        if kind == "snapshot":
            region, _, snapshot_id = rest.partition("/")
            _check_name(region)
            _check_name(snapshot_id)
            with self._taken_lock:
                taken = self._taken.pop(token, None)
            if taken is not None:
                return taken
            metadata = self._complete_snapshot(region, snapshot_id)
            if metadata is not None:
                return _succeeded(region, snapshot_id, metadata)
            if self._being_taken(region, snapshot_id):
                return OperationStatus(state="inProgress")
        elif kind != "restore" or not _OPERATION_ID.match(rest):
            raise ValueError(f"not an operation of the local driver: {token!r}")
        outcome = self._read_outcome(token)
        if outcome is not None:
            return outcome
        return _failed("INTERRUPTED", INTERRUPTED_MESSAGE)

    def _being_taken(self, region: str, snapshot_id: str) -> bool:
        """Whether a live thread or process holds the lock on this snapshot's partial file."""
        partial = self.data_dir / SNAPSHOTS / region / f"{snapshot_id}{SNAPSHOT_SUFFIX}{PARTIAL_SUFFIX}"
        try:
            fd = os.open(partial, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _outcome_path(self, token: str) -> Path:
        return self.data_dir / OPERATIONS / f"{hashlib.sha256(token.encode()).hexdigest()[:32]}.json"

    def _record_outcome(self, token: str, status: OperationStatus) -> None:
        record = {
            "token": token,
            "state": status.state,
            "result": status.result,
            "errorCode": status.error_code,
            "errorMessage": status.error_message,
        }
        try:
            for created in self._makedirs(self.data_dir / OPERATIONS):
                self._fsync_dir(created.parent)
            self._write_json(self._outcome_path(token), record)
        except OSError:
            self._unsaved[token] = status

    def _read_outcome(self, token: str) -> OperationStatus | None:
        try:
            record = json.loads(self._outcome_path(token).read_text())
        except (OSError, ValueError):
            return self._unsaved.get(token)
        return OperationStatus(
            state=record["state"],
            result=record.get("result") or {},
            error_code=record.get("errorCode"),
            error_message=record.get("errorMessage"),
        )

    def forget_operation(self, token: str) -> None:
        """The caller recorded this operation's result: its outcome record is no longer needed (R9 leaves
        no file behind). Polling it afterwards reports it interrupted."""
        kind, _, _rest = token.partition(":")
        if kind not in ("snapshot", "restore"):
            raise ValueError(f"not an operation of the local driver: {token!r}")
        self._forget_outcome(token)

    def _forget_outcome(self, token: str) -> None:
        self._unsaved.pop(token, None)
        _unlink(self._outcome_path(token))

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""

    # Paths and durability -------------------------------------------------------------------------

    def _volume_path(self, handle: str) -> Path:
        """The file a volume handle names; anything but the layout's shape is refused."""
        parts = PurePosixPath(handle).parts
        if (
            len(parts) != 5
            or parts[0] != VOLUMES
            or not all(_NAME.match(part) for part in parts[1:4])
            or not _MEMBER_FILE.match(parts[4])
        ):
            raise ValueError(f"not a volume handle of the local driver: {handle!r}")
        return self.data_dir.joinpath(*parts)

    def _snapshot_name(self, handle: str) -> tuple[str, str]:
        parts = PurePosixPath(handle).parts
        if len(parts) != 3 or parts[0] != SNAPSHOTS or not parts[2].endswith(SNAPSHOT_SUFFIX):
            raise ValueError(f"not a snapshot handle: {handle!r}")
        region, snapshot_id = parts[1], parts[2][: -len(SNAPSHOT_SUFFIX)]
        _check_name(region)
        _check_name(snapshot_id)
        return region, snapshot_id

    def _write_json(self, path: Path, value: dict[str, Any], *, sync_dir: bool = True) -> None:
        """Write a small file so that it is either absent or complete, never half-written."""
        data = json.dumps(value, sort_keys=True).encode()
        # The `.partial` name, not a per-process one: the driver's cleanup and deletes look for it.
        temporary = path.with_name(path.name + PARTIAL_SUFFIX)
        write_atomic(path, data, mode=0o644, durable=self.durable, temporary=temporary)
        if sync_dir:
            self._fsync_dir(path.parent)

    def _makedirs(self, directory: Path) -> list[Path]:
        """Create a directory and its missing parents; return those created, outermost first."""
        missing: list[Path] = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
        return list(reversed(missing))

    def _remove_empty_dirs(self, directory: Path, stop: Path) -> None:
        while directory != stop and stop in directory.parents:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:  # not empty: a sibling volume is still there
                return
            directory = directory.parent

    def _fsync(self, fd: int) -> None:
        if self.durable:
            os.fsync(fd)

    def _fsync_dir(self, directory: Path) -> None:
        if not self.durable:
            return
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            # A sibling's delete removed the emptied directory; its parent's entry is what changed.
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_name(value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{value!r} cannot name a file: use letters, digits, '-' and '_'")


def _normal(handle: str) -> str:
    return str(PurePosixPath(handle))


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _succeeded(region: str, snapshot_id: str, metadata: dict[str, Any]) -> OperationStatus:
    """What poll reports for a complete snapshot, from its sidecar's content."""
    return OperationStatus(
        state="succeeded",
        result={
            "handle": f"{SNAPSHOTS}/{region}/{snapshot_id}{SNAPSHOT_SUFFIX}",
            "storageSizeBytes": metadata["storageSizeBytes"],
            "diskSizeBytes": metadata["diskSizeBytes"],
            "checksum": metadata["checksum"],
        },
    )


def _failed(code: str, message: str) -> OperationStatus:
    return OperationStatus(state="failed", error_code=code, error_message=message)


def _from_os_error(error: OSError, what: str) -> _Failed:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return _Failed("DISK_FULL", f"{what} ran out of disk space; free some and try again")
    return _Failed("IO_ERROR", f"{what} failed: {error.strerror or error}")
