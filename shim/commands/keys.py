"""`cloudbackup keys create | list | revoke`: API key pairs, kept in the database the shim serves from."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shim.commands import FAILED, OK, CommandError, add_data_dir
from shim.commands.database import open_store
from shim.commands.table import render


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")

    create = key_commands.add_parser("create", help="create an API key pair and print it as JSON")
    add_data_dir(create)
    create.add_argument(
        "--project", metavar="PROJECT_ID", help="reach this project alone (default: organization key)"
    )
    create.add_argument("--read-only", action="store_true", help="a key that may only read")
    create.add_argument(
        "--export",
        action="store_true",
        help="print an `export CLOUDBACKUP_PUBLIC_KEY=... CLOUDBACKUP_PRIVATE_KEY=...` line, not JSON",
    )
    create.set_defaults(run=create_key)

    listing = key_commands.add_parser("list", help="list the API keys (never a private key)")
    add_data_dir(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=list_keys)

    revoke = key_commands.add_parser("revoke", help="delete an API key; the shim refuses it from then on")
    add_data_dir(revoke)
    revoke.add_argument("public_key", metavar="PUBLIC_KEY")
    revoke.set_defaults(run=revoke_key)


def create_key(args: argparse.Namespace) -> int:
    """Print {"publicKey", "privateKey"}: the only time the private key is shown."""
    from shim.auth import create_key as new_key
    from shim.store import queries

    store = open_store(args)
    try:
        with store.write() as session:
            if args.project and queries.project(session, args.project) is None:
                raise CommandError(
                    f"no project with ID {args.project}; list them with `cloudbackup status`", FAILED
                )
            public_key, private_key = new_key(session, project_id=args.project, read_only=args.read_only)
    finally:
        store.close()
    if args.export:
        print(f"export CLOUDBACKUP_PUBLIC_KEY={public_key} CLOUDBACKUP_PRIVATE_KEY={private_key}", flush=True)
    else:
        print(json.dumps({"publicKey": public_key, "privateKey": private_key}), flush=True)
    return OK


def list_keys(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from shim.clock import format_time
    from shim.store.models import ApiKey

    store = open_store(args)
    try:
        with store.read() as session:
            rows = session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars().all()
            keys = [
                {
                    "publicKey": row.public_key,
                    "scope": f"project {row.project_id}" if row.project_id else "organization",
                    "readOnly": row.read_only,
                    "created": format_time(row.created_at),
                    "lastUsed": format_time(row.last_used_at) if row.last_used_at else None,
                }
                for row in rows
            ]
    finally:
        store.close()
    if args.json:
        print(json.dumps(keys, indent=2))
        return OK
    header = ("PUBLIC KEY", "SCOPE", "READ-ONLY", "CREATED", "LAST USED")
    body = [
        (k["publicKey"], k["scope"], "yes" if k["readOnly"] else "no", k["created"], k["lastUsed"] or "never")
        for k in keys
    ]
    sys.stdout.write(
        render(header, body) if body else "no API keys; create one with `cloudbackup keys create`\n"
    )
    return OK


def revoke_key(args: argparse.Namespace) -> int:
    from shim.store.models import ApiKey

    store = open_store(args)
    try:
        with store.write() as session:
            row = session.get(ApiKey, args.public_key)
            if row is None:
                raise CommandError(
                    f"no API key {args.public_key} in this database; see `cloudbackup keys list`", FAILED
                )
            session.delete(row)
    finally:
        store.close()
    print(f"revoked {args.public_key}", flush=True)
    return OK
