"""The `cloudbackup` command: the one module that imports both shim/ and provider/."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from shim import logs
from shim.commands import CommandError

log = logging.getLogger("cloudbackup.cli")

# Subcommands kept in modules of their own: each has `register(commands)`, which adds its parser and sets
# `run` (a function of the parsed arguments that returns the exit code). A new command is one line here.
COMMAND_MODULES = (
    "shim.commands.serve",
    "shim.commands.keys",
    "shim.commands.status",
    "shim.commands.day_two",
    "shim.commands.database_schema",
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cloudbackup")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudbackup", description="Atlas-style cloud provider snapshots for Azure-backed replica sets."
    )
    parser.add_argument("--version", action="version", version=f"cloudbackup {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)

    provider = commands.add_parser("provider", help="the Terraform provider")
    provider_commands = provider.add_subparsers(dest="provider_command", required=True, metavar="COMMAND")
    install = provider_commands.add_parser("install", help="install the plugin where terraform init finds it")
    install.add_argument("--dir", type=Path, help="plugin directory (default ~/.terraform.d/plugins)")
    install.set_defaults(run=provider_install)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The other commands print what they did; their INFO logs (a migration) would only be noise.
    level = os.environ.get("CLOUDBACKUP_LOG_LEVEL", "INFO" if args.command == "serve" else "WARNING").upper()
    logs.setup(getattr(args, "log_format", "text"), level)
    if level != "DEBUG":
        # azure-core logs every request and answer at INFO, and azure-identity warns of each credential it
        # tried, over many lines; the driver reports what matters itself (a refused credential at start).
        logging.getLogger("azure").setLevel(logging.WARNING)
        logging.getLogger("azure.identity").setLevel(logging.ERROR)
    try:
        return int(args.run(args))
    except CommandError as error:
        # One line naming the fix: a traceback would bury it.
        print(f"cloudbackup: {error}", file=sys.stderr, flush=True)
        return error.code


def provider_install(args: argparse.Namespace) -> int:
    from provider.runtime.install import install

    path = install(args.dir)
    print(path, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
