"""Opening the database of a data directory for the commands that work on it directly (keys)."""

from __future__ import annotations

import argparse
import shlex
import sys

from shim.commands import USAGE, CommandError, data_dir_of
from shim.store import Store, default_url
from shim.store.engine import DATABASE_FILE


def open_store(args: argparse.Namespace) -> Store:
    """The database named by --database, or the one in the data directory.

    A data directory that does not exist is refused rather than made with a new, empty database: a key
    created there would belong to no running shim and be answered with 401 (the mistake of a command run
    from another directory than `serve`). An existing directory without a database yet (a key made before
    the first `serve`) gets one, and a line on stderr says so.
    """
    if getattr(args, "database", None):
        url = args.database
    else:
        data_dir = data_dir_of(args)
        if not data_dir.is_dir():
            where = shlex.quote(str(data_dir))
            raise CommandError(
                f"no data directory {data_dir}: pass the --data-dir (or CLOUDBACKUP_DATA_DIR) that "
                f"`cloudbackup serve` uses, or run `cloudbackup serve --data-dir {where}` once to create it",
                USAGE,
            )
        if not (data_dir / DATABASE_FILE).is_file():
            print(f"cloudbackup: new database in {data_dir}/{DATABASE_FILE}", file=sys.stderr, flush=True)
        url = default_url(data_dir)
    store = Store(url, pool_size=1)
    try:
        store.migrate()
    except Exception:
        store.close()
        raise
    return store
