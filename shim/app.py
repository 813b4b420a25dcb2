"""The application factory: create_app(config) wires store, driver, clock, service, auth and the API."""

from __future__ import annotations

import logging

from flask import Flask

from shim import logs, metrics
from shim.api import page, register
from shim.api.common import Runtime, refuse_encoded_slashes
from shim.auth import DigestAuth, load_nonce_key
from shim.clock import Clock, ManualClock, RealClock
from shim.config import Config
from shim.drivers import make_driver
from shim.errors import install_error_handlers
from shim.scheduler import Scheduler
from shim.service import Service
from shim.store import Store, default_url, leases, migrate

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def create_app(config: Config | None = None) -> Flask:
    """A ready shim: driver made, database migrated, unfinished work reconciled, scheduler started."""
    config = config or Config()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # The driver first: one that cannot start (settings, credentials) stops the shim before anything else.
    driver = make_driver(config)
    store = Store(config.database_url or default_url(config.data_dir))
    migrate.prepare(store, upgrade_behind=config.upgrade_db)
    clock: Clock = config.clock or (ManualClock() if config.manual_clock else RealClock())
    service = Service(
        store,
        driver,
        clock,
        batch_size=config.batch_size,
        driver_workers=config.driver_workers,
        snapshot_delay=config.snapshot_delay(),
    )
    service.load_manual_clock()
    # One replica among any others on this database: its lease covers the operations it starts.
    service.lease_seconds = config.lease_seconds
    service.replica_id = leases.register(store, config.lease_seconds)
    auth = DigestAuth(store, load_nonce_key(store), nonce_ttl_seconds=config.nonce_ttl_seconds)

    app = Flask("shim")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # No request of the API is near 1 MiB; a larger body is refused (413) before it is read into memory.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    install_error_handlers(app)
    logs.install_access_log(app)
    metrics.install(app, service)
    app.before_request(refuse_encoded_slashes)
    register(app, manual_clock=clock.manual)
    app.register_blueprint(page.blueprint())
    runtime = Runtime(config, service, auth)
    app.extensions["cloudbackup"] = runtime
    if config.scheduler:
        runtime.lease_keeper = leases.LeaseKeeper(store, service.replica_id, config.lease_seconds)
        runtime.lease_keeper.start()
    if config.reconcile:
        service.reconcile()
    if config.scheduler:
        runtime.scheduler = Scheduler(
            service, config.tick_seconds, reconcile_interval=config.reconcile_interval_seconds
        )
        runtime.scheduler.start()
    log.info(
        "shim ready: driver %s, database %s, %s clock",
        driver.name,
        store.engine.url.render_as_string(hide_password=True),
        "manual" if clock.manual else "real",
    )
    return app


def shutdown(app: Flask) -> None:
    """Stop the scheduler (finishing its tick), then release the driver and the database."""
    runtime: Runtime = app.extensions["cloudbackup"]
    if runtime.scheduler is not None:
        runtime.scheduler.stop()
    if runtime.lease_keeper is not None:
        runtime.lease_keeper.stop()
    elif runtime.service.replica_id is not None:
        leases.unregister(runtime.service.store, runtime.service.replica_id)
    with runtime.service.work_lock:
        runtime.service.close()
        runtime.service.driver.close()
        runtime.service.store.close()
