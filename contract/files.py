"""Writing a file whole or not at all: the one atomic write that the shim and the provider both use."""

from __future__ import annotations

import os

# Kept to os alone: the plugin's cold start writes its TLS certificate and schema cache through this.


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o600,
    durable: bool = False,
    temporary: str | os.PathLike[str] | None = None,
) -> None:
    """Write `data` to `path` so that a reader sees the old content or the new, never a part of either.

    The bytes go to a temporary file beside `path` (default `<path>.<pid>.tmp`, so that two processes
    never share one), which is then renamed over it. `durable` syncs the file to disk before the rename;
    syncing the directory too is the caller's choice (one sync can cover several renames). On failure the
    temporary file is removed and `path` is as it was.
    """
    target = os.fspath(path)
    tmp = os.fspath(temporary) if temporary is not None else f"{target}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            # The mode asked for, whatever the umask: an installed plugin must be executable.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:  # noqa: SIM105 (contextlib is one import more on the plugin's cold start)
            os.unlink(tmp)
        except OSError:
            pass
        raise
