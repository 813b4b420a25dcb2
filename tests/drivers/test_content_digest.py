"""The content digest: defined on the logical content, cheap on holes, equal for sparse and full files."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from shim.drivers.digest import BLOCK_SIZE, HOLE_BLOCK_DIGEST, content_digest, digest_bytes

MIB = 1024 * 1024
GIB = 1024 * MIB


def reference_digest(content: bytes) -> str:
    """The definition, written out: sha256 over the sha256 of each 4 MiB block, the last one shorter."""
    blocks = [content[i : i + 4 * MIB] for i in range(0, len(content), 4 * MIB)]
    return "sha256-4m:" + hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()


def make_sparse(path: Path, size: int, writes: list[tuple[int, bytes]]) -> None:
    with path.open("wb") as file:
        file.truncate(size)
        for offset, data in writes:
            file.seek(offset)
            file.write(data)


def content_of(size: int, writes: list[tuple[int, bytes]]) -> bytes:
    content = bytearray(size)
    for offset, data in writes:
        content[offset : offset + len(data)] = data
    return bytes(content)


def test_the_hole_block_constant_is_the_digest_of_a_block_of_zeros() -> None:
    assert hashlib.sha256(bytes(BLOCK_SIZE)).digest() == HOLE_BLOCK_DIGEST


def test_a_sparse_file_digests_like_the_same_content_materialised(tmp_path: Path) -> None:
    size = 7 * BLOCK_SIZE + 999
    writes = [(BLOCK_SIZE + 10, os.urandom(3 * MIB)), (5 * BLOCK_SIZE - 1, b"!!"), (size - 4, b"end.")]
    make_sparse(tmp_path / "sparse", size, writes)
    content = content_of(size, writes)
    (tmp_path / "full").write_bytes(content)  # every zero written out: no holes

    assert (tmp_path / "full").stat().st_blocks * 512 >= size
    assert content_digest(tmp_path / "sparse") == content_digest(tmp_path / "full")
    assert content_digest(tmp_path / "sparse") == reference_digest(content) == digest_bytes(content)


def test_the_digest_names_its_scheme_and_changes_with_one_byte(tmp_path: Path) -> None:
    make_sparse(tmp_path / "a", 3 * MIB, [(MIB, b"x")])
    make_sparse(tmp_path / "b", 3 * MIB, [(MIB, b"y")])

    digest = content_digest(tmp_path / "a")

    assert digest.startswith("sha256-4m:") and len(digest) == len("sha256-4m:") + 64
    assert digest != content_digest(tmp_path / "b")


def test_the_digest_depends_on_the_logical_size_not_only_the_data(tmp_path: Path) -> None:
    make_sparse(tmp_path / "small", GIB, [(0, b"data")])
    make_sparse(tmp_path / "large", 2 * GIB, [(0, b"data")])

    assert content_digest(tmp_path / "small") != content_digest(tmp_path / "large")
    assert content_digest(tmp_path / "small") == content_digest(tmp_path / "large", length=GIB)


def test_a_ten_gib_volume_holding_one_mib_digests_faster_than_a_file_of_64_mib_of_data(
    tmp_path: Path,
) -> None:
    make_sparse(tmp_path / "volume", 10 * GIB, [(3 * GIB + 12345, os.urandom(MIB))])
    (tmp_path / "dense").write_bytes(os.urandom(64 * MIB))

    def seconds(path: Path) -> float:
        started = time.perf_counter()
        content_digest(path)
        return time.perf_counter() - started

    # Best of three each, measured in this run: the holes are skipped, so 10 GiB with 1 MiB of data costs
    # less than hashing 64 MiB (reading the holes would cost 160 times that).
    sparse = min(seconds(tmp_path / "volume") for _ in range(3))
    dense = min(seconds(tmp_path / "dense") for _ in range(3))
    assert sparse < dense


def test_an_empty_file_has_the_digest_of_no_blocks(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")

    assert content_digest(tmp_path / "empty") == "sha256-4m:" + hashlib.sha256(b"").hexdigest()


def test_a_length_beyond_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(b"abc")

    with pytest.raises(ValueError):
        content_digest(tmp_path / "short", length=4)
