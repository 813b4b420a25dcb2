"""Opening the database of a data directory for the commands that work on it directly (keys)."""

from __future__ import annotations

import argparse
import shlex

from shim.commands import USAGE, CommandError, data_dir_of
from shim.store import Store, default_url
from shim.store.engine import DATABASE_FILE


def open_store(args: argparse.Namespace) -> Store:
    """The database named by --database, or the one `serve` made in the data directory.

    A data directory without a database is refused rather than given a new, empty one: a key created
    there would belong to no running shim and be answered with 401 (the mistake of a command run from
    another directory than `serve`).
    """
    if getattr(args, "database", None):
        url = args.database
    else:
        data_dir = data_dir_of(args)
        if not (data_dir / DATABASE_FILE).is_file():
            where = shlex.quote(str(data_dir))
            raise CommandError(
                f"no cloudbackup database in {data_dir}/: run `cloudbackup serve --data-dir {where}` once "
                f"(it creates one), or pass the --data-dir (or CLOUDBACKUP_DATA_DIR) that serve uses",
                USAGE,
            )
        url = default_url(data_dir)
    store = Store(url, pool_size=1)
    try:
        store.migrate()
    except Exception:
        store.close()
        raise
    return store
