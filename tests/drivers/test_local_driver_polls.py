"""The local driver answers the first poll of a snapshot it just took from memory, as disk would answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from driverkit import volume_spec

from shim.drivers import local as local_module
from shim.drivers.local import LocalDriver

TAGS = {"cloudbackup-snapshot-id": "s1"}


def test_the_first_poll_after_a_snapshot_answers_what_a_fresh_driver_reads_from_disk(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    volume = local_driver.create_volume(volume_spec())
    (local_dir / volume).write_bytes(b"data" * 1000)
    token = local_driver.start_snapshot(volume_handle=volume, region="eastus2", snapshot_id="s1", tags=TAGS)

    from_memory = local_driver.poll(token)

    assert from_memory.state == "succeeded"
    assert from_memory == LocalDriver(local_dir).poll(token) == local_driver.poll(token)


def test_a_snapshot_deleted_before_its_first_poll_is_not_reported_taken(
    local_driver: LocalDriver, local_dir: Path
) -> None:
    volume = local_driver.create_volume(volume_spec())
    token = local_driver.start_snapshot(volume_handle=volume, region="eastus2", snapshot_id="s1", tags=TAGS)

    local_driver.delete_snapshot("snapshots/eastus2/s1.snap")

    assert local_driver.poll(token).state == "failed"


def test_snapshots_never_polled_are_forgotten_beyond_a_bound(
    local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "TAKEN_REMEMBERED", 2)
    driver = LocalDriver(local_dir, durable=False)
    volume = driver.create_volume(volume_spec())
    tokens = [
        driver.start_snapshot(volume_handle=volume, region="eastus2", snapshot_id=f"s{n}", tags=TAGS)
        for n in range(5)
    ]
    assert list(driver._taken) == tokens[-2:]
    # A forgotten one is read from disk instead: the same answer.
    assert driver.poll(tokens[0]) == LocalDriver(local_dir).poll(tokens[0])
    assert driver.poll(tokens[0]).state == "succeeded"
