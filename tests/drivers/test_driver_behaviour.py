"""What every snapshot driver does, seen only through the Driver interface and the storage harness."""

from __future__ import annotations

import pytest
from driverkit import (
    GIB,
    OTHER_REGION,
    REGION,
    StorageHarness,
    expected_digest,
    snapshot_tags,
    volume_spec,
)

from shim.drivers.base import Driver, DriverError, OperationStatus

DATA = [(0, b"the first page of a collection"), (5 * 1024 * 1024 - 3, b"across a block boundary")]
OTHER_DATA = [(4096, b"something the database wrote later")]


def write(storage: StorageHarness, handle: str, writes: list[tuple[int, bytes]]) -> None:
    for offset, data in writes:
        storage.write_volume(handle, offset, data)


def snapshot(storage: StorageHarness, handle: str, snapshot_id: str, region: str = REGION) -> OperationStatus:
    token = storage.driver.start_snapshot(
        volume_handle=handle, region=region, snapshot_id=snapshot_id, tags=snapshot_tags(snapshot_id)
    )
    return storage.wait(token)


def restore(
    storage: StorageHarness, snapshot_handle: str, target: str, expected: str | None = None
) -> OperationStatus:
    token = storage.driver.start_restore(
        snapshot_handle=snapshot_handle,
        target_volume_handle=target,
        region=REGION,
        expected_checksum=expected,
    )
    return storage.wait(token)


def succeeded(status: OperationStatus) -> dict[str, object]:
    assert status.state == "succeeded", (status.error_code, status.error_message)
    return status.result


def test_a_new_volume_reads_as_zeros_of_the_requested_size(driver: Driver, storage: StorageHarness) -> None:
    handle = driver.create_volume(volume_spec(size_gb=1))

    assert storage.volume_digest(handle) == expected_digest(1 * GIB)


def test_a_grown_volume_keeps_its_data_and_reads_as_zeros_beyond(
    driver: Driver, storage: StorageHarness
) -> None:
    handle = driver.create_volume(volume_spec(size_gb=1))
    write(storage, handle, DATA)

    driver.resize_volume(handle, 2)

    assert storage.volume_digest(handle) == expected_digest(2 * GIB, DATA)


def test_the_members_of_a_cluster_have_separate_volumes(driver: Driver, storage: StorageHarness) -> None:
    first = driver.create_volume(volume_spec(member=0))
    second = driver.create_volume(volume_spec(member=1))
    write(storage, first, DATA)

    assert first != second
    assert storage.volume_digest(second) == expected_digest(GIB)


def test_a_deleted_volume_is_gone_and_deleting_it_again_is_fine(
    driver: Driver, storage: StorageHarness
) -> None:
    handle = driver.create_volume(volume_spec())

    driver.delete_volume(handle)
    driver.delete_volume(handle)

    status = snapshot(storage, handle, "s-of-nothing")
    assert status.state == "failed"
    assert status.error_code and status.error_message


def test_resizing_a_deleted_volume_is_a_driver_error(driver: Driver) -> None:
    handle = driver.create_volume(volume_spec())
    driver.delete_volume(handle)

    with pytest.raises(DriverError):
        driver.resize_volume(handle, 2)


def test_a_snapshot_is_a_full_copy_whose_digest_matches_the_volume(
    driver: Driver, storage: StorageHarness
) -> None:
    source = driver.create_volume(volume_spec(cluster="c1"))
    write(storage, source, DATA)
    taken_digest = storage.volume_digest(source)

    result = succeeded(snapshot(storage, source, "s1"))
    write(storage, source, OTHER_DATA)  # the snapshot must not see this: it is a copy, not a view
    target = driver.create_volume(volume_spec(cluster="c2"))
    restored = succeeded(restore(storage, str(result["handle"]), target))

    assert result["diskSizeBytes"] == GIB
    assert isinstance(result["storageSizeBytes"], int) and result["storageSizeBytes"] > 0
    if storage.checksums:
        assert result["checksum"] == taken_digest
    assert storage.volume_digest(str(restored["volumeHandle"])) == taken_digest
    assert storage.volume_digest(source) == expected_digest(GIB, DATA + OTHER_DATA)


def test_a_snapshot_is_stored_in_the_region_it_was_asked_for(driver: Driver, storage: StorageHarness) -> None:
    east = driver.create_volume(volume_spec(cluster="c1", region=REGION))
    west = driver.create_volume(volume_spec(cluster="c2", region=OTHER_REGION))

    east_handle = succeeded(snapshot(storage, east, "s-east", region=REGION))["handle"]
    west_handle = succeeded(snapshot(storage, west, "s-west", region=OTHER_REGION))["handle"]

    regions = {stored.handle: stored.region for stored in driver.list_snapshots()}
    assert regions == {east_handle: REGION, west_handle: OTHER_REGION}


def test_list_snapshots_traces_each_snapshot_to_its_id(driver: Driver, storage: StorageHarness) -> None:
    volume = driver.create_volume(volume_spec())
    write(storage, volume, DATA)
    handles = {
        snapshot_id: succeeded(snapshot(storage, volume, snapshot_id))["handle"] for snapshot_id in "abc"
    }

    listed = {stored.snapshot_id: stored.handle for stored in driver.list_snapshots()}

    assert listed == handles
    assert all(driver.snapshot_exists(str(handle)) for handle in handles.values())


def test_restore_makes_the_target_identical_to_the_snapshot(driver: Driver, storage: StorageHarness) -> None:
    source = driver.create_volume(volume_spec(cluster="c1"))
    write(storage, source, DATA)
    taken = succeeded(snapshot(storage, source, "s1"))
    target = driver.create_volume(volume_spec(cluster="c2"))
    write(storage, target, [(0, b"X" * 10_000), (GIB - 5, b"tail!")])  # old data the restore must replace

    result = succeeded(restore(storage, str(taken["handle"]), target, expected=taken["checksum"]))  # type: ignore[arg-type]

    restored = str(result["volumeHandle"])
    assert storage.volume_digest(restored) == expected_digest(GIB, DATA)
    if storage.checksums:
        assert result["checksum"] == taken["checksum"] == storage.volume_digest(restored)


def test_restore_into_a_larger_volume_keeps_its_size_and_zeroes_the_rest(
    driver: Driver, storage: StorageHarness
) -> None:
    source = driver.create_volume(volume_spec(cluster="c1", size_gb=1))
    write(storage, source, DATA)
    taken = succeeded(snapshot(storage, source, "s1"))
    target = driver.create_volume(volume_spec(cluster="c2", size_gb=2))
    write(storage, target, [(GIB + 12345, b"left over from before")])

    result = succeeded(restore(storage, str(taken["handle"]), target))

    assert storage.volume_digest(str(result["volumeHandle"])) == expected_digest(2 * GIB, DATA)
    if storage.checksums:
        assert result["checksum"] == taken["checksum"]


def test_a_corrupted_snapshot_fails_restore_with_snapshot_corrupt_and_leaves_the_target(
    driver: Driver, storage: StorageHarness
) -> None:
    if not storage.checksums:
        pytest.skip(f"the {driver.name} driver cannot digest a snapshot's content")
    source = driver.create_volume(volume_spec(cluster="c1"))
    write(storage, source, DATA)
    taken = succeeded(snapshot(storage, source, "s1"))
    target = driver.create_volume(volume_spec(cluster="c2"))
    write(storage, target, OTHER_DATA)
    storage.corrupt_snapshot(str(taken["handle"]))

    status = restore(storage, str(taken["handle"]), target, expected=str(taken["checksum"]))

    assert status.state == "failed"
    assert status.error_code == "SNAPSHOT_CORRUPT"
    assert storage.volume_digest(target) == expected_digest(GIB, OTHER_DATA)


def test_a_snapshot_that_does_not_match_the_expected_checksum_fails_restore(
    driver: Driver, storage: StorageHarness
) -> None:
    if not storage.checksums:
        pytest.skip(f"the {driver.name} driver cannot digest a snapshot's content")
    source = driver.create_volume(volume_spec(cluster="c1"))
    write(storage, source, DATA)
    taken = succeeded(snapshot(storage, source, "s1"))
    target = driver.create_volume(volume_spec(cluster="c2"))

    status = restore(storage, str(taken["handle"]), target, expected=expected_digest(GIB, OTHER_DATA))

    assert (status.state, status.error_code) == ("failed", "SNAPSHOT_CORRUPT")


def test_deleting_a_snapshot_twice_is_fine_and_it_is_gone(driver: Driver, storage: StorageHarness) -> None:
    volume = driver.create_volume(volume_spec())
    kept = succeeded(snapshot(storage, volume, "kept"))["handle"]
    handle = str(succeeded(snapshot(storage, volume, "gone"))["handle"])

    driver.delete_snapshot(handle)
    driver.delete_snapshot(handle)

    assert not driver.snapshot_exists(handle)
    assert [stored.handle for stored in driver.list_snapshots()] == [kept]


def test_restoring_a_deleted_snapshot_fails(driver: Driver, storage: StorageHarness) -> None:
    volume = driver.create_volume(volume_spec())
    handle = str(succeeded(snapshot(storage, volume, "gone"))["handle"])
    driver.delete_snapshot(handle)

    status = restore(storage, handle, volume)

    assert status.state == "failed"
    assert status.error_code and status.error_message


def test_poll_answers_from_a_fresh_driver_after_a_restart(driver: Driver, storage: StorageHarness) -> None:
    source = driver.create_volume(volume_spec(cluster="c1"))
    write(storage, source, DATA)
    snapshot_token = driver.start_snapshot(
        volume_handle=source, region=REGION, snapshot_id="s1", tags=snapshot_tags("s1")
    )
    taken = storage.wait(snapshot_token)
    target = driver.create_volume(volume_spec(cluster="c2"))
    restore_token = driver.start_restore(
        snapshot_handle=str(taken.result["handle"]),
        target_volume_handle=target,
        region=REGION,
        expected_checksum=None,
    )
    restored = storage.wait(restore_token)
    gone = driver.create_volume(volume_spec(cluster="c3"))
    driver.delete_volume(gone)
    failed_token = driver.start_restore(
        snapshot_handle=str(taken.result["handle"]),
        target_volume_handle=gone,
        region=REGION,
        expected_checksum=None,
    )
    failed = storage.wait(failed_token)

    after_restart = storage.restarted()

    assert storage.wait(snapshot_token, after_restart) == taken
    assert storage.wait(restore_token, after_restart) == restored
    assert failed.state == "failed"
    assert storage.wait(failed_token, after_restart) == failed


def test_a_snapshot_left_unfinished_by_a_crash_is_an_orphan_and_not_a_snapshot(
    driver: Driver, storage: StorageHarness
) -> None:
    volume = driver.create_volume(volume_spec())
    finished = succeeded(snapshot(storage, volume, "finished"))["handle"]
    storage.leave_unfinished_snapshot(REGION, "cut-short")

    listed = storage.restarted().list_snapshots()

    assert {stored.snapshot_id for stored in listed} == {"finished", None}
    orphan = next(stored for stored in listed if stored.snapshot_id is None)
    assert orphan.region == REGION
    assert not driver.snapshot_exists(orphan.handle)
    driver.delete_snapshot(orphan.handle)
    assert [stored.handle for stored in driver.list_snapshots()] == [finished]


def test_a_snapshot_started_again_after_a_restart_finishes_with_the_copy_storage_holds(
    driver: Driver, storage: StorageHarness
) -> None:
    volume = driver.create_volume(volume_spec())
    write(storage, volume, DATA)
    taken_digest = storage.volume_digest(volume)
    first = succeeded(snapshot(storage, volume, "s1"))
    write(storage, volume, OTHER_DATA)  # written after the copy the crashed attempt made

    # The process died before recording the token: the control plane starts the same snapshot again.
    after_restart = storage.restarted()
    token = after_restart.start_snapshot(
        volume_handle=volume, region=REGION, snapshot_id="s1", tags=snapshot_tags("s1")
    )
    again = succeeded(storage.wait(token, after_restart))

    assert again["handle"] == first["handle"]
    assert [stored.snapshot_id for stored in after_restart.list_snapshots()] == ["s1"]
    target = after_restart.create_volume(volume_spec(cluster="c2"))
    restored = succeeded(restore_with(storage, after_restart, str(again["handle"]), target))
    assert storage.volume_digest(str(restored["volumeHandle"])) == taken_digest  # the first copy, kept


def restore_with(
    storage: StorageHarness, driver: Driver, snapshot_handle: str, target: str
) -> OperationStatus:
    token = driver.start_restore(
        snapshot_handle=snapshot_handle, target_volume_handle=target, region=REGION, expected_checksum=None
    )
    return storage.wait(token, driver)
