"""What `cloudbackup serve` makes sure of before it starts: its files, its database to itself, its port."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from shim.commands import FAILED, USAGE, CommandError


def check_installation() -> None:
    """Refuse to start without the files read at run time (a broken install answered every write with 500)."""
    from contract.documents import missing

    problem = missing()
    if problem is not None:
        raise CommandError(
            f"cannot start: {problem}; reinstall cloudbackup (pip install --force-reinstall cloudbackup)",
            USAGE,
        )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def lock_database(url: str) -> IO[str] | None:
    """Hold an exclusive lock beside a SQLite database for the life of this process.

    SQLite is one process's database here: a second shim on it would run the same schedule twice. The
    kernel drops the flock when the process ends, however it ends, so a crash leaves no stale lock. Other
    databases are not locked: replicas on PostgreSQL share one legitimately.
    """
    database = sqlite_file(url)
    if database is None:
        return None
    database.parent.mkdir(parents=True, exist_ok=True)
    lock_path = database.with_name(database.name + ".lock")
    handle = open(lock_path, "a+")  # noqa: SIM115 (held open until the process ends)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CommandError(
            f"cannot start: another `cloudbackup serve` (pid {holder}) is using the database {database}; "
            f"stop it first, or give this one its own --data-dir",
            FAILED,
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, bound before anything says the shim listens."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise CommandError(f"cannot start: cannot resolve --host {host}: {error.strerror}", USAGE) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(1024)
    except OSError as error:
        sock.close()
        reason = (
            "is in use (is another `cloudbackup serve` running?)"
            if error.errno == errno.EADDRINUSE
            else error.strerror
        )
        raise CommandError(
            f"cannot start: port {port} on {host} {reason}; stop that process or pass another --port", FAILED
        ) from None
    return sock
