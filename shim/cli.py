"""The `cloudbackup` command: serve | keys create | provider install."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from shim import dbcommands
from shim.config import Config
from shim.drivers import DRIVERS

log = logging.getLogger("shim.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudbackup", description="Atlas-style cloud provider snapshots for Azure-backed replica sets."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the shim (the backup control plane)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default 8080)"
    )
    serve.add_argument(
        "--data-dir", type=Path, default=Path(".cloudbackup"), help="data directory (default ./.cloudbackup)"
    )
    serve.add_argument(
        "--database", metavar="URL", help="SQLAlchemy database URL (default: SQLite in the data directory)"
    )
    serve.add_argument("--driver", choices=DRIVERS, default="local", help="snapshot driver (default local)")
    serve.add_argument(
        "--manual-clock",
        action="store_true",
        help="a clock that moves only by POST /api/atlas/v1.0/admin/clock (demos and tests)",
    )
    serve.add_argument(
        "--azure-subscription-id", help="azure: subscription of the disks (env AZURE_SUBSCRIPTION_ID)"
    )
    serve.add_argument(
        "--azure-resource-group",
        help="azure: resource group of the disks (env CLOUDBACKUP_AZURE_RESOURCE_GROUP)",
    )
    serve.add_argument(
        "--azure-endpoint",
        help="azure: Resource Manager URL (env CLOUDBACKUP_AZURE_ENDPOINT; default public cloud)",
    )
    serve.add_argument(
        "--reconcile-interval",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="seconds between reconciliations of the snapshot records with storage while serving"
        " (default 900; 0: only at start)",
    )
    serve.add_argument(
        "--upgrade-db",
        action="store_true",
        help="upgrade a database whose schema is behind this version (default: refuse to start)",
    )
    serve.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="replicas on one database: how long a stopped replica's operations wait before another"
        " replica adopts them (default 30)",
    )
    # Waitress's request threads: four (its own default), not eight. On two cores more threads only contend
    # for the GIL (benchmarks/api_throughput.py measured ~8% more requests/s, and less CPU per request, with
    # four), and four still leave requests answered while a long one (a snapshot, a restore) runs.
    serve.add_argument("--threads", type=int, default=4, help=argparse.SUPPRESS)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = key_commands.add_parser("create", help="create an API key pair and print it as JSON")
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir", type=Path, default=Path(".cloudbackup"), help="data directory (default ./.cloudbackup)"
    )
    where.add_argument("--database", metavar="URL", help="SQLAlchemy database URL")
    create.add_argument(
        "--project", metavar="PROJECT_ID", help="reach this project alone (default: organization key)"
    )
    create.add_argument("--read-only", action="store_true", help="a key that may only read")

    dbcommands.add_parser(commands)

    provider = commands.add_parser("provider", help="the Terraform provider")
    provider_commands = provider.add_subparsers(dest="provider_command", required=True, metavar="COMMAND")
    install = provider_commands.add_parser("install", help="install the plugin where terraform init finds it")
    install.add_argument("--dir", type=Path, help="plugin directory (default ~/.terraform.d/plugins)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = os.environ.get("CLOUDBACKUP_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level != "DEBUG":
        # azure-core logs every request and answer at INFO, and azure-identity warns of each credential it
        # tried, over many lines; the driver reports what matters itself (a refused credential at start).
        logging.getLogger("azure").setLevel(logging.WARNING)
        logging.getLogger("azure.identity").setLevel(logging.ERROR)
    if args.command == "serve":
        return serve(args)
    if args.command == "keys":
        return keys_create(args)
    if args.command == "db":
        return dbcommands.run(args)
    return provider_install(args)


def serve(args: argparse.Namespace) -> int:
    """Run the shim on waitress until SIGTERM or SIGINT; exit 0 after a clean stop."""
    from waitress.server import create_server

    from shim.app import create_app, shutdown

    config = Config.with_environment(
        data_dir=args.data_dir,
        database_url=args.database,
        driver=args.driver,
        manual_clock=args.manual_clock,
        host=args.host,
        port=args.port,
        scheduler=True,
        azure_subscription_id=args.azure_subscription_id,
        azure_resource_group=args.azure_resource_group,
        azure_endpoint=args.azure_endpoint,
        reconcile_interval_seconds=args.reconcile_interval,
        upgrade_db=args.upgrade_db,
        lease_seconds=args.lease_seconds,
    )
    from shim.store.migrate import SchemaError

    configuration_errors: tuple[type[Exception], ...] = (SchemaError,)
    if config.driver == "azure":
        from shim.drivers.azure_settings import AzureConfigurationError

        configuration_errors += (AzureConfigurationError,)

    def stop(signum: int, _frame: FrameType | None) -> None:
        # waitress's loop ends on SystemExit and finishes the requests in flight.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app = None
    try:
        try:
            app = create_app(config)
        except configuration_errors as error:
            # One line naming what to fix: a traceback would bury it.
            print(f"cloudbackup: cannot start: {' '.join(str(error).split())}", file=sys.stderr, flush=True)
            return 2
        server = create_server(app, host=args.host, port=args.port, threads=args.threads, ident="cloudbackup")
        port = server.effective_port  # type: ignore[union-attr]
        print(f"listening on http://{args.host}:{port}", flush=True)
        server.run()
    except SystemExit:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if app is not None:
            log.info("stopping: finishing the scheduler's work")
            shutdown(app)
            log.info("stopped")
    return 0


def keys_create(args: argparse.Namespace) -> int:
    """Print {"publicKey", "privateKey"}: the only time the private key is shown."""
    from shim.auth import create_key
    from shim.store import Store, default_url, queries

    if args.database:
        url = args.database
    else:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        url = default_url(args.data_dir)
    store = Store(url, pool_size=1)
    try:
        store.migrate()
        with store.write() as session:
            if args.project and queries.project(session, args.project) is None:
                print(f"cloudbackup: no project with ID {args.project}", file=sys.stderr)
                return 2
            public_key, private_key = create_key(session, project_id=args.project, read_only=args.read_only)
    finally:
        store.close()
    print(json.dumps({"publicKey": public_key, "privateKey": private_key}), flush=True)
    return 0


def provider_install(args: argparse.Namespace) -> int:
    from provider.install import install  # type: ignore[import-not-found]

    path = install(args.dir)
    print(path, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
