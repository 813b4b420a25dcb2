"""What only the local driver promises: its files, their sparseness, crash leftovers and on-disk outcomes."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from driverkit import GIB, REGION, snapshot_tags, volume_spec

from shim.drivers import local as local_module
from shim.drivers.base import DriverError, OperationStatus
from shim.drivers.digest import content_digest
from shim.drivers.local import INTERRUPTED_MESSAGE, LocalDriver

MIB = 1024 * 1024


def write(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def read(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def take(driver: LocalDriver, volume: str, snapshot_id: str) -> OperationStatus:
    token = driver.start_snapshot(
        volume_handle=volume, region=REGION, snapshot_id=snapshot_id, tags=snapshot_tags(snapshot_id)
    )
    return driver.poll(token)


def restore(driver: LocalDriver, snapshot: str, target: str, expected: str | None = None) -> OperationStatus:
    token = driver.start_restore(
        snapshot_handle=snapshot, target_volume_handle=target, region=REGION, expected_checksum=expected
    )
    return driver.poll(token)


def whole_file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def test_a_volume_is_a_sparse_file_under_its_region_project_and_cluster(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    handle = local_driver.create_volume(volume_spec(project="p9", cluster="c7", member=2, size_gb=3))

    assert handle == "volumes/eastus2/p9/c7/member-2.img"
    path = local_dir / handle
    assert path.stat().st_size == 3 * GIB
    assert path.stat().st_blocks == 0


def test_volumes_can_be_sized_in_smaller_units_for_tests_and_benchmarks(local_dir: Path) -> None:
    driver = LocalDriver(local_dir, bytes_per_gb=MIB)
    handle = driver.create_volume(volume_spec(size_gb=2))
    driver.resize_volume(handle, 3)

    assert (local_dir / handle).stat().st_size == 3 * MIB
    assert take(driver, handle, "s1").result["diskSizeBytes"] == 3 * MIB


def test_creating_a_volume_again_keeps_its_data(local_driver: LocalDriver, local_dir: Path) -> None:
    handle = local_driver.create_volume(volume_spec())
    write(local_dir / handle, 100, b"precious")

    assert local_driver.create_volume(volume_spec()) == handle
    assert read(local_dir / handle, 100, 8) == b"precious"


def test_deleting_the_last_volume_of_a_cluster_removes_its_empty_directories(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    kept = local_driver.create_volume(volume_spec(cluster="c1"))
    gone = local_driver.create_volume(volume_spec(cluster="c2"))

    local_driver.delete_volume(gone)

    assert not (local_dir / gone).parent.exists()
    assert (local_dir / kept).exists()


def test_a_volume_cannot_shrink(local_driver: LocalDriver) -> None:
    handle = local_driver.create_volume(volume_spec(size_gb=2))

    with pytest.raises(DriverError) as refused:
        local_driver.resize_volume(handle, 1)

    assert refused.value.code == "SHRINK_NOT_SUPPORTED"


@pytest.mark.parametrize(
    "handle",
    ["/etc/passwd", "../outside.img", "volumes/../../outside.img", "volumes", "snapshots/eastus2/s1.snap"],
)
def test_a_handle_that_leaves_the_data_directory_is_refused(local_driver: LocalDriver, handle: str) -> None:
    with pytest.raises(ValueError):
        local_driver.delete_volume(handle)


def test_a_snapshot_is_a_file_with_a_sidecar_under_its_region(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    volume = local_driver.create_volume(volume_spec())
    write(local_dir / volume, 3 * MIB, b"data")

    result = take(local_driver, volume, "s1").result

    assert result["handle"] == "snapshots/eastus2/s1.snap"
    assert sorted(path.name for path in (local_dir / "snapshots" / REGION).iterdir()) == [
        "s1.json",
        "s1.snap",
    ]
    sidecar = json.loads((local_dir / "snapshots" / REGION / "s1.json").read_text())
    assert sidecar["snapshotId"] == "s1"
    assert sidecar["sourceVolume"] == volume
    assert sidecar["tags"] == snapshot_tags("s1")
    assert (
        sidecar["checksum"] == result["checksum"] == content_digest(local_dir / "snapshots/eastus2/s1.snap")
    )
    assert (sidecar["diskSizeBytes"], sidecar["storageSizeBytes"]) == (GIB, result["storageSizeBytes"])


def test_a_snapshot_keeps_the_holes_of_its_volume(local_driver: LocalDriver, local_dir: Path) -> None:
    volume = local_driver.create_volume(volume_spec(size_gb=1))
    write(local_dir / volume, 512 * MIB, os.urandom(MIB))

    result = take(local_driver, volume, "s1").result

    stored = local_dir / str(result["handle"])
    assert stored.stat().st_size == GIB
    assert stored.stat().st_blocks * 512 <= 2 * MIB
    assert result["storageSizeBytes"] == stored.stat().st_blocks * 512


def test_restore_makes_the_target_byte_identical_by_whole_file_sha256(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    # Small volumes (the driver sizes in GiB; the files themselves may be any size).
    source = local_driver.create_volume(volume_spec(cluster="c1"))
    target = local_driver.create_volume(volume_spec(cluster="c2"))
    size = 9 * MIB + 1234  # a short last block
    os.truncate(local_dir / source, size)
    os.truncate(local_dir / target, size)
    write(local_dir / source, 0, os.urandom(5 * MIB))
    write(local_dir / source, size - 100, os.urandom(100))
    write(local_dir / target, MIB, b"old data the restore must replace")
    snapshot = take(local_driver, source, "s1").result

    result = restore(local_driver, str(snapshot["handle"]), target).result

    assert result == {"volumeHandle": target, "checksum": snapshot["checksum"]}
    assert whole_file_sha256(local_dir / target) == whole_file_sha256(local_dir / source)
    assert whole_file_sha256(local_dir / target) == whole_file_sha256(local_dir / str(snapshot["handle"]))


def test_a_flipped_byte_fails_restore_with_snapshot_corrupt_even_without_an_expected_checksum(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    volume = local_driver.create_volume(volume_spec())
    write(local_dir / volume, 0, b"abc")
    snapshot = str(take(local_driver, volume, "s1").result["handle"])
    write(local_dir / snapshot, 1, b"X")

    status = restore(local_driver, snapshot, volume, expected=None)

    assert (status.state, status.error_code) == ("failed", "SNAPSHOT_CORRUPT")
    assert "no longer matches" in str(status.error_message)


def test_a_restore_into_a_smaller_volume_fails_with_target_too_small(local_driver: LocalDriver) -> None:
    source = local_driver.create_volume(volume_spec(cluster="c1", size_gb=2))
    target = local_driver.create_volume(volume_spec(cluster="c2", size_gb=1))
    snapshot = str(take(local_driver, source, "s1").result["handle"])

    status = restore(local_driver, snapshot, target)

    assert (status.state, status.error_code) == ("failed", "TARGET_TOO_SMALL")


def test_a_snapshot_of_a_missing_volume_fails_with_volume_not_found_also_after_a_restart(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    token = local_driver.start_snapshot(
        volume_handle="volumes/eastus2/p1/c1/member-0.img", region=REGION, snapshot_id="s1", tags={}
    )

    for driver in (local_driver, LocalDriver(local_dir)):
        status = driver.poll(token)
        assert (status.state, status.error_code) == ("failed", "VOLUME_NOT_FOUND")


def test_a_full_disk_fails_the_snapshot_with_disk_full_and_leaves_nothing(
    local_driver: LocalDriver, local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = local_driver.create_volume(volume_spec())

    def copy_until_full(src_fd: int, dst_fd: int, size: int, **options: object) -> None:
        os.pwrite(dst_fd, b"the first bytes fit", 0)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(local_module, "copy_with_digest", copy_until_full)

    status = take(local_driver, volume, "s1")

    assert (status.state, status.error_code) == ("failed", "DISK_FULL")
    assert list((local_dir / "snapshots" / REGION).iterdir()) == []
    assert local_driver.list_snapshots() == []


class Crash(BaseException):
    """The process dying: nothing after it runs, no cleanup handler for OSError catches it."""


def test_a_crash_mid_snapshot_leaves_an_orphan_polled_as_interrupted_and_a_retry_takes_it(
    local_driver: LocalDriver, local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = local_driver.create_volume(volume_spec())
    write(local_dir / volume, 0, b"data")
    real_copy = local_module.copy_with_digest

    def copy_then_die(src_fd: int, dst_fd: int, size: int, **options: object) -> None:
        os.pwrite(dst_fd, b"half", 0)
        raise Crash

    monkeypatch.setattr(local_module, "copy_with_digest", copy_then_die)
    with pytest.raises(Crash):
        local_driver.start_snapshot(volume_handle=volume, region=REGION, snapshot_id="s1", tags={})
    monkeypatch.setattr(local_module, "copy_with_digest", real_copy)

    restarted = LocalDriver(local_dir)
    status = restarted.poll("snapshot:eastus2/s1")
    assert (status.state, status.error_code, status.error_message) == (
        "failed",
        "INTERRUPTED",
        INTERRUPTED_MESSAGE,
    )
    assert [(stored.handle, stored.snapshot_id) for stored in restarted.list_snapshots()] == [
        ("snapshots/eastus2/s1.snap", None)
    ]
    assert take(restarted, volume, "s1").state == "succeeded"
    assert sorted(path.name for path in (local_dir / "snapshots" / REGION).iterdir()) == [
        "s1.json",
        "s1.snap",
    ]


def test_a_snapshot_being_copied_by_another_process_polls_as_in_progress(local_dir: Path) -> None:
    directory = local_dir / "snapshots" / REGION
    directory.mkdir(parents=True)
    other = os.open(directory / "s1.snap.partial", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # the other process, in the middle of its copy

        assert LocalDriver(local_dir).poll("snapshot:eastus2/s1").state == "inProgress"
    finally:
        os.close(other)
    assert LocalDriver(local_dir).poll("snapshot:eastus2/s1").error_code == "INTERRUPTED"  # its lock went


def test_two_takers_of_one_snapshot_at_once_copy_it_once(
    local_driver: LocalDriver, local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = local_driver.create_volume(volume_spec())
    write(local_dir / volume, 0, b"copied once")
    real_copy = local_module.copy_with_digest
    copying, may_finish = threading.Event(), threading.Event()
    copies: list[int] = []

    def slow_copy(*args: Any, **options: Any) -> Any:
        copies.append(1)
        copying.set()
        assert may_finish.wait(10)
        return real_copy(*args, **options)

    monkeypatch.setattr(local_module, "copy_with_digest", slow_copy)
    tokens: list[str] = []

    def start() -> None:
        tokens.append(
            local_driver.start_snapshot(volume_handle=volume, region=REGION, snapshot_id="s1", tags={})
        )

    first = threading.Thread(target=start)
    first.start()
    assert copying.wait(10)
    assert local_driver.poll("snapshot:eastus2/s1").state == "inProgress"
    second = threading.Thread(target=start)
    second.start()  # waits for the first taker's lock, or finds the snapshot done
    may_finish.set()
    first.join(10)
    second.join(10)

    assert copies == [1]
    assert tokens == ["snapshot:eastus2/s1"] * 2
    result = local_driver.poll(tokens[0]).result
    assert result["checksum"] == content_digest(local_dir / volume)
    assert sorted(path.name for path in (local_dir / "snapshots" / REGION).iterdir()) == [
        "s1.json",
        "s1.snap",
    ]


def test_a_restore_cut_short_by_a_crash_is_polled_as_interrupted(local_dir: Path) -> None:
    status = LocalDriver(local_dir).poll("restore:" + "0" * 32)

    assert (status.state, status.error_code) == ("failed", "INTERRUPTED")
    assert "shim stopped during the operation" in str(status.error_message)


@pytest.mark.parametrize(
    "leftovers",
    [
        ["x.snap.partial"],  # died while copying
        ["x.snap.partial", "x.json"],  # died after the sidecar, before the data file's rename
        ["x.snap.partial", "x.json.partial"],  # died while writing the sidecar
        ["x.snap"],  # a data file whose sidecar was lost
        ["x.json"],  # died while deleting, after the data file went
    ],
)
def test_a_partial_file_left_by_a_crash_is_an_orphan_and_never_a_snapshot(
    local_driver: LocalDriver, local_dir: Path, leftovers: list[str]
) -> None:
    volume = local_driver.create_volume(volume_spec())
    take(local_driver, volume, "good")
    directory = local_dir / "snapshots" / REGION
    for name in leftovers:
        (directory / name).write_text('{"checksum": "sha256-4m:00", "snapshotId": "x"}')

    listed = LocalDriver(local_dir).list_snapshots()

    assert {(stored.handle, stored.snapshot_id) for stored in listed} == {
        ("snapshots/eastus2/good.snap", "good"),
        ("snapshots/eastus2/x.snap", None),
    }
    assert not local_driver.snapshot_exists("snapshots/eastus2/x.snap")
    assert local_driver.poll("snapshot:eastus2/x").error_code == "INTERRUPTED"
    local_driver.delete_snapshot("snapshots/eastus2/x.snap")
    assert sorted(path.name for path in directory.iterdir()) == ["good.json", "good.snap"]


def test_a_snapshot_taken_before_is_not_copied_again(local_driver: LocalDriver, local_dir: Path) -> None:
    volume = local_driver.create_volume(volume_spec())
    first = take(local_driver, volume, "s1")
    stored = local_dir / str(first.result["handle"])
    inode = stored.stat().st_ino
    write(local_dir / volume, 0, b"changed since")

    again = take(local_driver, volume, "s1")

    assert again == first
    assert stored.stat().st_ino == inode


def test_the_data_directory_can_be_moved(local_driver: LocalDriver, local_dir: Path, tmp_path: Path) -> None:
    volume = local_driver.create_volume(volume_spec())
    write(local_dir / volume, 0, b"moves along")
    token = local_driver.start_snapshot(volume_handle=volume, region=REGION, snapshot_id="s1", tags={})
    taken = local_driver.poll(token)

    moved = tmp_path / "elsewhere"
    shutil.move(local_dir, moved)
    driver = LocalDriver(moved)

    assert driver.poll(token) == taken
    assert restore(driver, str(taken.result["handle"]), volume).state == "succeeded"
    assert read(moved / volume, 0, 11) == b"moves along"


def test_without_durability_the_driver_makes_the_same_files(local_dir: Path) -> None:
    driver = LocalDriver(local_dir, durable=False)
    volume = driver.create_volume(volume_spec())
    write(local_dir / volume, 0, b"test data")

    result = take(driver, volume, "s1").result

    assert result["checksum"] == content_digest(local_dir / volume)
    assert LocalDriver(local_dir).snapshot_exists(str(result["handle"]))
