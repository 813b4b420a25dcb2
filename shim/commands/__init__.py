"""The `cloudbackup` subcommands, one module each; cloudbackup/cli.py registers them and maps exit codes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Exit codes (README "Exit codes"): argparse itself exits 2 on a usage error.
OK = 0
FAILED = 1  # the work was refused or failed: a busy port, a locked database, a 4xx answer, nothing found
USAGE = 2  # the command cannot run as given: a missing setting, a missing file, a bad flag
UNREACHABLE = 3  # the shim did not answer, or refused the API key

DEFAULT_DATA_DIR = Path(".cloudbackup")


class CommandError(Exception):
    """A failure told to the operator in one line (with the fix), and the exit code it ends with."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def default_data_dir() -> Path:
    """CLOUDBACKUP_DATA_DIR, else ./.cloudbackup: the same for serve and every command that reads it."""
    return Path(os.environ.get("CLOUDBACKUP_DATA_DIR") or DEFAULT_DATA_DIR)


def add_data_dir(parser: argparse.ArgumentParser, *, database: bool = True) -> None:
    """--data-dir (and --database), spelled once for every command that opens the database itself."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory (env CLOUDBACKUP_DATA_DIR; default ./.cloudbackup)",
    )
    if database:
        where.add_argument(
            "--database",
            metavar="URL",
            help="SQLAlchemy database URL (default: SQLite in the data directory)",
        )


def data_dir_of(args: argparse.Namespace) -> Path:
    return args.data_dir if args.data_dir is not None else default_data_dir()
