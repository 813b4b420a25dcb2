"""A throw-away PostgreSQL 15 server for the test run: a private unix socket, one fresh database per test."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

# Debian's server binaries, used when initdb is not on PATH.
DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")
TEMPLATE = "cloudbackup_template"


def _binary(name: str) -> str:
    found = shutil.which(name) or (str(DEBIAN_BIN / name) if (DEBIAN_BIN / name).exists() else None)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: apt-get install -y postgresql (PostgreSQL 15)"
        )
    return found


def _as_server_user() -> list[str]:
    # initdb and postgres refuse to run as root: drop to nobody for them.
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


class PostgresServer:
    """initdb into a temporary directory, pg_ctl start with no TCP listener, stop and delete at the end."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cloudbackup-pg-", dir=_fast_tmp()))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self._names = itertools.count(1)
        self.started = False

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", "nogroup")
        run = _as_server_user()
        initdb = [_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        subprocess.run(
            [*run, *initdb, "--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
        )
        # Test data only: durability off, which makes each CREATE DATABASE and commit cheap.
        options = (
            f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
        )
        pg_ctl = [_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log")]
        subprocess.run(
            [*run, *pg_ctl, "-w", "-s", "start"],
            check=True,
            capture_output=True,
        )
        self.started = True
        atexit.register(self.stop)

    def stop(self) -> None:
        if self.started:
            self.started = False
            subprocess.run(
                [
                    *_as_server_user(),
                    _binary("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-s",
                    "stop",
                ],
                capture_output=True,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True)

    def prepare_template(self) -> None:
        """A database at the latest schema that each test's database is copied from."""
        from shim.store import Store

        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        store = Store(self.url(TEMPLATE), pool_size=1)
        store.migrate()
        store.close()

    def create_database(self, *, migrated: bool = True) -> str:
        """A fresh database (at the latest schema unless told otherwise); returns its name."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _fast_tmp() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
