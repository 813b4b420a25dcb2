"""The local driver's copy: holes stay holes, content is exact, and its checksum is the target's digest."""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shim.drivers import sparse_copy
from shim.drivers.digest import BLOCK_SIZE, content_digest, digest_bytes
from shim.drivers.sparse_copy import CopyResult, copy_with_digest

MIB = 1024 * 1024


def sparse_file(path: Path, size: int, writes: list[tuple[int, bytes]]) -> bytes:
    """Make a sparse file; return its full content as bytes."""
    content = bytearray(size)
    with path.open("wb") as file:
        file.truncate(size)
        for offset, data in writes:
            file.seek(offset)
            file.write(data)
            content[offset : offset + len(data)] = data
    return bytes(content)


def copy(
    source: Path, target: Path, dst_size: int | None = None, threads: int = 2, durable: bool = False
) -> CopyResult:
    src_fd = os.open(source, os.O_RDONLY)
    dst_fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        size = os.fstat(src_fd).st_size
        return copy_with_digest(src_fd, dst_fd, size, dst_size=dst_size, threads=threads, durable=durable)
    finally:
        os.close(src_fd)
        os.close(dst_fd)


WRITES = [
    (0, b"start"),
    (BLOCK_SIZE - 2, b"straddles a block boundary"),
    (3 * BLOCK_SIZE + 5, os.urandom(MIB)),
    (11 * BLOCK_SIZE, os.urandom(2 * BLOCK_SIZE + 17)),  # several whole blocks, then some
]
SIZE = 14 * BLOCK_SIZE + 4321  # the last block is short and a hole


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bytes]]:
    """A sparse source file, made once: the tests only read it."""
    path = tmp_path_factory.mktemp("source") / "source.img"
    yield path, sparse_file(path, SIZE, WRITES)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_copy_is_exact_keeps_the_holes_and_digests_the_target(
    source: tuple[Path, bytes], tmp_path: Path, threads: int
) -> None:
    path, content = source
    target = tmp_path / "target.img"

    result = copy(path, target, threads=threads)

    assert target.read_bytes() == content
    assert result.checksum == digest_bytes(content) == content_digest(target)
    assert target.stat().st_blocks * 512 <= path.stat().st_blocks * 512 + 8 * 4096
    assert result.bytes_copied < SIZE // 2


def test_a_durable_copy_starts_writeback_in_runs_and_makes_the_same_file(
    source: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, content = source
    started: list[tuple[int, int]] = []
    real_starter = sparse_copy._writeback_starter()
    assert real_starter is not None, "sync_file_range is in every Linux libc"

    def record(fd: int, offset: int, length: int, flags: int) -> int:
        started.append((offset, length))
        return real_starter(fd, offset, length, flags)

    monkeypatch.setattr(sparse_copy, "FLUSH_RUN", BLOCK_SIZE)
    monkeypatch.setattr(sparse_copy, "_writeback_starter", lambda: record)
    target = tmp_path / "target.img"

    result = copy(path, target, durable=True)

    assert target.read_bytes() == content
    assert result.checksum == digest_bytes(content)
    # Each run starts where the one before ended: the disk sees one sequential stream.
    assert started and started[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(started))


def test_a_copy_without_copy_file_range_makes_the_same_file(
    source: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, content = source

    def cross_device(*args: object) -> int:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "copy_file_range", cross_device)
    target = tmp_path / "target.img"

    result = copy(path, target)

    assert target.read_bytes() == content
    assert result.checksum == digest_bytes(content)


def test_a_copy_into_a_larger_target_reads_as_zeros_beyond_the_source(
    source: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, content = source
    target = tmp_path / "target.img"

    result = copy(path, target, dst_size=SIZE + 3 * BLOCK_SIZE)

    assert target.read_bytes() == content + bytes(3 * BLOCK_SIZE)
    assert result.checksum == digest_bytes(content) == content_digest(target, length=SIZE)


def test_a_reflink_is_used_where_the_file_system_has_one(
    source: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, content = source
    clones: list[int] = []

    def clone(fd: int, request: int, arg: int) -> int:
        # What FICLONE does on btrfs or XFS, made of plain copies: the target gets the source's extents.
        assert request == sparse_copy.FICLONE
        clones.append(arg)
        os.ftruncate(fd, 0)
        size = os.fstat(arg).st_size
        copied = 0
        while copied < size:
            copied += os.copy_file_range(arg, fd, size - copied, copied, copied)
        return 0

    monkeypatch.setattr(sparse_copy.fcntl, "ioctl", clone)
    target = tmp_path / "target.img"

    result = copy(path, target, dst_size=SIZE + BLOCK_SIZE)

    assert clones and result.reflinked
    assert target.read_bytes() == content + bytes(BLOCK_SIZE)
    assert result.checksum == digest_bytes(content)


def test_without_a_reflink_the_copy_falls_back_to_copying(
    source: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, content = source

    def no_reflink(fd: int, request: int, arg: int) -> int:
        raise OSError(errno.EOPNOTSUPP, "reflink not supported here")

    # As on ext4 or tmpfs, whatever filesystem this test runs on.
    monkeypatch.setattr(sparse_copy.fcntl, "ioctl", no_reflink)
    target = tmp_path / "target.img"

    result = copy(path, target)

    assert not result.reflinked and result.bytes_copied > 0
    assert target.read_bytes() == content
    assert result.checksum == digest_bytes(content)


def test_an_empty_file_copies_to_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")

    result = copy(tmp_path / "empty", tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == b""
    assert result.checksum == digest_bytes(b"")


def test_a_full_disk_in_the_middle_of_a_copy_is_raised(
    source: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = source
    real_copy_file_range = os.copy_file_range
    calls: list[int] = []

    def fill_up(*args: int) -> int:
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_copy_file_range(*args)

    monkeypatch.setattr(os, "copy_file_range", fill_up)

    with pytest.raises(OSError) as failure:
        copy(path, tmp_path / "target.img")

    assert failure.value.errno == errno.ENOSPC
