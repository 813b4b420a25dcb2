"""Sparse-aware file copy (a reflink, else data extents by copy_file_range) that digests what it wrote."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from shim.drivers.digest import (
    BLOCK_SIZE,
    blocks_with_data,
    clip_extents,
    data_extents,
    default_threads,
    fd_digest,
    format_digest,
    hole_digests,
    run_parallel,
)

FICLONE = 0x40049409  # _IOW(0x94, 9, int) from linux/fs.h
SYNC_FILE_RANGE_WRITE = 2
# Work is handed to threads in units of this many bytes: big enough that a unit's copy and hash dwarf the
# hand-over, small enough that two threads stay busy to the end of a 1 GiB file.
UNIT_SIZE = 8 * BLOCK_SIZE
# With `durable`, copied data is sent to disk in sequential runs of this size while the copy goes on
# (the fsync at the end then waits for less); one request per unit measured slower than none at all.
FLUSH_RUN = 32 * BLOCK_SIZE
# errno values of copy_file_range that mean "not between these two files": fall back to pread/pwrite.
_NO_COPY_FILE_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ETXTBSY}


@dataclass(frozen=True)
class CopyResult:
    """What a copy did: the digest of the bytes now in the target, and how they got there."""

    checksum: str
    reflinked: bool
    bytes_copied: int


def copy_with_digest(
    src_fd: int,
    dst_fd: int,
    size: int,
    *,
    dst_size: int | None = None,
    durable: bool = True,
    threads: int | None = None,
) -> CopyResult:
    """Copy the file `src_fd`, `size` bytes long, into the empty file `dst_fd` (opened read-write).

    Holes stay holes: the target is truncated to `dst_size` (default `size`) and only data extents are
    written. The checksum is the digest (shim.drivers.digest) of the target's first `size` bytes, read
    back from the target while the other units are still being copied. With `durable` the target is
    on disk when this returns (the caller still has to fsync the directory of a new name).
    """
    dst_size = size if dst_size is None else dst_size
    if dst_size < size:
        raise ValueError(f"a target of {dst_size} bytes cannot hold {size}")
    threads = threads or default_threads()
    if size > 0 and _reflink(src_fd, dst_fd):
        if os.fstat(dst_fd).st_size != dst_size:
            os.ftruncate(dst_fd, dst_size)
        checksum = fd_digest(dst_fd, size, threads=threads)
        if durable:
            os.fsync(dst_fd)
        return CopyResult(checksum=checksum, reflinked=True, bytes_copied=0)

    os.ftruncate(dst_fd, dst_size)
    extents = data_extents(src_fd, 0, size)
    digests = hole_digests(size)
    copier = _RangeCopier(src_fd, dst_fd)
    writeback = _writeback_starter() if durable else None
    # Writeback is started from a thread of its own: sync_file_range blocks while the disk queue is full.
    data_bytes = sum(end - start for start, end in extents)
    flusher = _Flusher(dst_fd, writeback) if writeback is not None and data_bytes > FLUSH_RUN else None

    def copy_unit(start: int, end: int) -> None:
        pieces = clip_extents(extents, start, end)
        for piece_start, piece_end in pieces:
            copier.copy(piece_start, piece_end)
        if flusher is not None:
            flusher.submit(start, end)
        _hash_mapped(dst_fd, start, end, blocks_with_data(pieces), digests)

    units = [
        (start, min(size, start + UNIT_SIZE))
        for start in range(0, size, UNIT_SIZE)
        if clip_extents(extents, start, min(size, start + UNIT_SIZE))
    ]
    try:
        run_parallel([_bind(copy_unit, start, end) for start, end in units], threads)
    finally:
        if flusher is not None:
            flusher.finish()
    if durable:
        os.fsync(dst_fd)
    return CopyResult(
        checksum=format_digest(digests),
        reflinked=False,
        bytes_copied=data_bytes,
    )


def _reflink(src_fd: int, dst_fd: int) -> bool:
    """Share the source's extents with the target (btrfs, XFS, bcachefs); False where the fs cannot."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError:
        return False
    return True


class _Flusher:
    """Starts writeback of copied units from its own thread, so copying and hashing never wait on the disk."""

    def __init__(self, fd: int, writeback: _Writeback) -> None:
        self.fd = fd
        self.writeback = writeback
        self.ranges: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="writeback", daemon=True)
        self.thread.start()

    def submit(self, start: int, end: int) -> None:
        self.ranges.put((start, end))

    def finish(self) -> None:
        self.ranges.put(None)
        self.thread.join()

    def _run(self) -> None:
        # Units finish out of order; write back only the contiguous prefix, in large sequential runs.
        done: dict[int, int] = {}
        flushed = prefix = 0
        while (item := self.ranges.get()) is not None:
            done[item[0]] = item[1]
            while prefix in done:
                prefix = done.pop(prefix)
            if prefix - flushed >= FLUSH_RUN:
                self.writeback(self.fd, flushed, prefix - flushed, SYNC_FILE_RANGE_WRITE)
                flushed = prefix


class _RangeCopier:
    """Copies byte ranges in the kernel, or through a buffer where copy_file_range does not work."""

    def __init__(self, src_fd: int, dst_fd: int) -> None:
        self.src_fd = src_fd
        self.dst_fd = dst_fd
        self.kernel_copy = True

    def copy(self, start: int, end: int) -> None:
        offset = start
        while offset < end and self.kernel_copy:
            try:
                copied = os.copy_file_range(self.src_fd, self.dst_fd, end - offset, offset, offset)
            except OSError as error:
                if error.errno not in _NO_COPY_FILE_RANGE:
                    raise
                self.kernel_copy = False
                break
            if copied == 0:
                raise OSError(errno.EIO, "the source shrank while it was being copied")
            offset += copied
        if offset < end:
            self._copy_through_buffer(offset, end)

    def _copy_through_buffer(self, start: int, end: int) -> None:
        buffer = bytearray(min(BLOCK_SIZE, end - start))
        view = memoryview(buffer)
        offset = start
        while offset < end:
            read = os.preadv(self.src_fd, [view[: min(len(buffer), end - offset)]], offset)
            if read == 0:
                raise OSError(errno.EIO, "the source shrank while it was being copied")
            written = 0
            while written < read:
                written += os.pwrite(self.dst_fd, view[written:read], offset + written)
            offset += read


def _hash_mapped(fd: int, start: int, end: int, blocks: list[int], digests: list[bytes]) -> None:
    """Hash the given blocks of [start, end) through a mapping (no copy into user space).

    Only for files this process owns for the duration: a mapped file truncated under us would SIGBUS.
    """
    if not blocks:
        return
    mapping = mmap.mmap(fd, end - start, prot=mmap.PROT_READ, offset=start)
    with mapping, memoryview(mapping) as view:
        for block in blocks:
            offset = block * BLOCK_SIZE - start
            digests[block] = hashlib.sha256(view[offset : min(offset + BLOCK_SIZE, end - start)]).digest()


_Writeback = Callable[[int, int, int, int], int]
_writeback_function: list[_Writeback | None] = []


def _writeback_starter() -> _Writeback | None:
    """sync_file_range(2) from libc (Linux), which Python does not wrap; None where there is none."""
    if not _writeback_function:
        function: _Writeback | None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            function = libc.sync_file_range
            function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            function.restype = ctypes.c_int
        except (OSError, AttributeError):
            function = None
        _writeback_function.append(function)
    return _writeback_function[0]


def _bind(function: Callable[..., None], *args: object) -> Callable[[], None]:
    return lambda: function(*args)
