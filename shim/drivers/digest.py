"""The content digest of a volume or snapshot: SHA-256 over per-4-MiB-block SHA-256s, with holes for free."""

from __future__ import annotations

import bisect
import errno
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

BLOCK_SIZE = 4 * 1024 * 1024
DIGEST_PREFIX = "sha256-4m:"
# sha256 of BLOCK_SIZE zero bytes: the digest of every block that lies wholly in a hole.
HOLE_BLOCK_DIGEST = bytes.fromhex("bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8")

Extent = tuple[int, int]  # [start, end) byte range holding data


@lru_cache(maxsize=1)
def default_threads() -> int:
    """Threads to hash and copy with: every core, up to four (more only fights over memory bandwidth)."""
    return max(1, min(4, os.cpu_count() or 1))


@lru_cache(maxsize=8)
def zero_digest(length: int) -> bytes:
    """The block digest of `length` zero bytes (a hole); a full block's is the constant."""
    if length == BLOCK_SIZE:
        return HOLE_BLOCK_DIGEST
    return hashlib.sha256(bytes(length)).digest()


def block_count(size: int) -> int:
    return (size + BLOCK_SIZE - 1) // BLOCK_SIZE


def format_digest(block_digests: Iterable[bytes]) -> str:
    """The digest string ("sha256-4m:<hex>") of the block digests, in order."""
    outer = hashlib.sha256()
    for block_digest in block_digests:
        outer.update(block_digest)
    return DIGEST_PREFIX + outer.hexdigest()


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """The digest of content held in memory (for tests and fakes of other storage)."""
    view = memoryview(data)
    return format_digest(
        hashlib.sha256(view[offset : offset + BLOCK_SIZE]).digest()
        for offset in range(0, len(view), BLOCK_SIZE)
    )


def data_extents(fd: int, start: int, end: int) -> list[Extent]:
    """The ranges of [start, end) that hold data, by SEEK_DATA/SEEK_HOLE (all of it if the fs cannot say)."""
    extents: list[Extent] = []
    offset = start
    while offset < end:
        try:
            data = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # no data after offset
                break
            if error.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                return [(start, end)] if start < end else []
            raise
        if data >= end:
            break
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        extents.append((data, hole))
        offset = hole
    return extents


def clip_extents(extents: Sequence[Extent], start: int, end: int) -> list[Extent]:
    """The parts of sorted, disjoint `extents` that fall inside [start, end)."""
    first = bisect.bisect_right(extents, (start, end)) - 1
    clipped: list[Extent] = []
    for data_start, data_end in extents[max(first, 0) :]:
        if data_start >= end:
            break
        if data_end > start:
            clipped.append((max(data_start, start), min(data_end, end)))
    return clipped


def hash_blocks_by_pread(fd: int, size: int, blocks: Sequence[int], digests: list[bytes]) -> None:
    """Hash the given blocks of `fd` into `digests[block]`, reading with pread (safe if the file shrinks)."""
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    for block in blocks:
        offset = block * BLOCK_SIZE
        length = min(BLOCK_SIZE, size - offset)
        done = 0
        while done < length:
            read = os.preadv(fd, [view[done:length]], offset + done)
            if read == 0:
                raise OSError(errno.EIO, "the file shrank while it was being hashed")
            done += read
        digests[block] = hashlib.sha256(view[:length]).digest()


def run_parallel(jobs: Sequence[Callable[[], None]], threads: int) -> None:
    """Run the jobs on up to `threads` threads (inline when one is enough); the first error is raised."""
    if threads <= 1 or len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()  # a full disk fails every unit: do not try the rest
            raise


def content_digest(
    path: str | os.PathLike[str], *, length: int | None = None, threads: int | None = None
) -> str:
    """The digest of a file's first `length` bytes (default: all of it); holes cost nothing to hash."""
    fd = os.open(Path(path), os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if length is not None:
            if length > size:
                raise ValueError(f"{path} holds {size} bytes, fewer than the {length} to digest")
            size = length
        return fd_digest(fd, size, threads=threads)
    finally:
        os.close(fd)


def fd_digest(fd: int, size: int, *, threads: int | None = None) -> str:
    """The digest of the first `size` bytes of an open file."""
    extents = data_extents(fd, 0, size)
    digests = hole_digests(size)
    data_blocks = blocks_with_data(extents)
    threads = threads or default_threads()
    # Contiguous runs per job keep each thread's reads sequential.
    per_job = max(1, min(8, len(data_blocks) // threads or 1))
    chunks = [data_blocks[i : i + per_job] for i in range(0, len(data_blocks), per_job)]
    run_parallel([_bind(hash_blocks_by_pread, fd, size, chunk, digests) for chunk in chunks], threads)
    return format_digest(digests)


def hole_digests(size: int) -> list[bytes]:
    """Block digests of `size` bytes of zeros, to be overwritten where blocks hold data."""
    count = block_count(size)
    digests = [HOLE_BLOCK_DIGEST] * count
    if count and size % BLOCK_SIZE:
        digests[-1] = zero_digest(size % BLOCK_SIZE)
    return digests


def blocks_with_data(extents: Iterable[Extent]) -> list[int]:
    """The indexes of the blocks that the extents touch, in order."""
    blocks: list[int] = []
    for start, end in extents:
        first = max(start // BLOCK_SIZE, blocks[-1] + 1 if blocks else 0)
        blocks.extend(range(first, (end - 1) // BLOCK_SIZE + 1))
    return blocks


def _bind(function: Callable[..., None], *args: object) -> Callable[[], None]:
    return lambda: function(*args)
