"""`cloudbackup serve`: the shim on waitress, with its scheduler, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from shim.commands import OK, default_data_dir
from shim.config import Config
from shim.drivers import DRIVERS

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    serve_parser = commands.add_parser("serve", help="run the shim (the backup control plane)")
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve_parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default 8080)"
    )
    serve_parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory: the SQLite database and the local driver's volumes"
        " (env CLOUDBACKUP_DATA_DIR; default ./.cloudbackup)",
    )
    serve_parser.add_argument(
        "--database", metavar="URL", help="SQLAlchemy database URL (default: SQLite in the data directory)"
    )
    serve_parser.add_argument(
        "--driver", choices=DRIVERS, default="local", help="snapshot driver (default local)"
    )
    serve_parser.add_argument(
        "--manual-clock",
        action="store_true",
        help="a clock that moves only by POST /api/atlas/v1.0/admin/clock (demos and tests)",
    )
    serve_parser.add_argument(
        "--azure-subscription-id", help="azure: subscription of the disks (env AZURE_SUBSCRIPTION_ID)"
    )
    serve_parser.add_argument(
        "--azure-resource-group",
        help="azure: resource group of the disks (env CLOUDBACKUP_AZURE_RESOURCE_GROUP)",
    )
    serve_parser.add_argument(
        "--azure-endpoint",
        help="azure: Resource Manager URL (env CLOUDBACKUP_AZURE_ENDPOINT; default public cloud)",
    )
    serve_parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="seconds between reconciliations of the snapshot records with storage while serving"
        " (default 900; 0: only at start)",
    )
    serve_parser.add_argument(
        "--upgrade-db",
        action="store_true",
        help="upgrade a database whose schema is behind this version (default: refuse to start)",
    )
    serve_parser.add_argument(
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
    serve_parser.add_argument("--threads", type=int, default=4, help=argparse.SUPPRESS)
    serve_parser.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="log lines (default text)"
    )
    serve_parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        type=_listen_address,
        help="also serve GET /metrics without a key on this address (host default 127.0.0.1)",
    )
    serve_parser.set_defaults(run=serve)


def serve(args: argparse.Namespace) -> int:
    """Run the shim on waitress until SIGTERM or SIGINT; exit 0 after a clean stop."""
    from waitress.server import create_server

    from shim.app import create_app, shutdown
    from shim.commands import startup
    from shim.store import default_url

    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    startup.check_installation()
    # Held until the process ends (the kernel releases it on any exit, a crash too).
    _lock = startup.lock_database(args.database or default_url(data_dir))
    listener = startup.bind(args.host, args.port)
    config = Config.with_environment(
        data_dir=data_dir,
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
        # waitress's loop ends on SystemExit and finishes the requests in flight; a clock advance among
        # them ends at its next step instead of walking on.
        if app is not None:
            app.extensions["cloudbackup"].service.stopping.set()
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
        from shim.serving import WAITRESS_SETTINGS, raise_open_file_limit

        raise_open_file_limit()
        server = create_server(
            app, sockets=[listener], threads=args.threads, ident="cloudbackup", **WAITRESS_SETTINGS
        )
        port = listener.getsockname()[1]
        if args.metrics_listen:
            metrics_listener = start_metrics_listener(app, *args.metrics_listen)
            if metrics_listener is None:
                return 1
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
    return OK


def _listen_address(value: str) -> tuple[str, int]:
    from shim.metrics import parse_listen

    try:
        return parse_listen(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def start_metrics_listener(app: Any, host: str, port: int) -> Any:
    """The keyless /metrics listener of --metrics-listen; None (said in one line) if it cannot bind."""
    from shim import metrics

    try:
        listener = metrics.Listener(app.extensions[metrics.EXTENSION], host, port)
    except OSError as error:
        print(
            f"cloudbackup: cannot serve metrics on {host}:{port}: {error.strerror or error}", file=sys.stderr
        )
        return None
    print(f"metrics on {listener.url}", flush=True)
    return listener
