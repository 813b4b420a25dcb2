"""`cloudbackup db upgrade | current | sql`: the database schema, migrated with Alembic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shim.commands import default_data_dir
from shim.store import Store, default_url, migrate


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = commands.add_parser("db", help="the database schema (Alembic migrations)")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    helps = {
        "upgrade": "bring the database to this version's schema (safe with replicas starting at once)",
        "current": "print the database's schema revision and whether it is current",
        "sql": (
            "print the SQL that upgrades a database, for a DBA to run (nothing is connected); a database"
            " made by cloudbackup 0.1.0 is adopted by `db upgrade` alone"
        ),
    }
    for name, text in helps.items():
        sub = db_commands.add_parser(name, help=text)
        where = sub.add_mutually_exclusive_group()
        where.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="data directory (env CLOUDBACKUP_DATA_DIR; default ./.cloudbackup)",
        )
        where.add_argument("--database", metavar="URL", help="SQLAlchemy database URL")
        if name == "sql":
            sub.add_argument(
                "--from",
                dest="since",
                metavar="REVISION",
                help="the revision the database is at (default: empty)",
            )
        sub.set_defaults(run=run)


def _url(args: argparse.Namespace, *, create: bool) -> str:
    if args.database:
        return str(args.database)
    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    if create:
        data_dir.mkdir(parents=True, exist_ok=True)
    return default_url(data_dir)


def run(args: argparse.Namespace) -> int:
    if args.db_command == "sql":
        print(migrate.offline_sql(_url(args, create=False), args.since), end="", flush=True)
        return 0
    store = Store(_url(args, create=args.db_command == "upgrade"), pool_size=1)
    try:
        if args.db_command == "upgrade":
            try:
                state = migrate.upgrade(store)
            except migrate.SchemaError as error:
                print(f"cloudbackup: {error}", file=sys.stderr)
                return 2
        else:
            try:
                state = migrate.state(store)
            except migrate.SchemaError as error:
                print(f"cloudbackup: {error}", file=sys.stderr)
                return 2
    finally:
        store.close()
    print(f"{state.describe()} ({state.status}; this cloudbackup's head is {state.head})", flush=True)
    return 0 if state.status == "current" else 1
