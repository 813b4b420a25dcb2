"""Fixtures: an app on a temporary data directory with a manual clock, and a Digest-speaking test client."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from pgserver import PostgresServer
from shimkit import START, ApiClient, FlakyDriver
from shimstorage import DRIVER_KINDS, ShimStorage, make_storage

from shim.app import create_app, shutdown
from shim.auth import create_key
from shim.clock import ManualClock
from shim.config import Config

DATABASES = ("sqlite", "postgresql")

# --- one suite for every driver ----------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "drivers(*kinds): run the test once per driver kind (default: every kind) behind the shim;"
        " the `storage` fixture shows that driver's storage",
    )
    config.addinivalue_line(
        "markers",
        "databases(*kinds): run the test on these databases only (default: sqlite and postgresql)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("drivers")
    if marker is not None and "storage" in metafunc.fixturenames:
        metafunc.parametrize("storage", marker.args or DRIVER_KINDS, indirect=True)
    if "database_url" in metafunc.fixturenames:
        databases = metafunc.definition.get_closest_marker("databases")
        metafunc.parametrize("database_url", databases.args if databases else DATABASES, indirect=True)


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh data directory; on tmpfs where there is one, as fsyncs would dominate the run time."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="cloudbackup-test-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        path = tmp_path / "data"
        path.mkdir()
        yield path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL server for the whole run, started by the first test that needs it."""
    server = PostgresServer()
    try:
        server.start()
        server.prepare_template()
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str | None]:
    """The shim's database: SQLite in the data directory (None), or a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def storage(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[ShimStorage]:
    """The storage behind the shim: local files, unless a `drivers` marker runs the test per driver kind."""
    harness = make_storage(getattr(request, "param", "local"), data_dir)
    yield harness
    harness.close()


@pytest.fixture
def config(data_dir: Path, database_url: str | None, clock: ManualClock, storage: ShimStorage) -> Config:
    """A shim with a manual clock and no scheduler thread, on `storage`'s driver.

    The local driver (no fsync: test data) is wrapped in FlakyDriver; the azure driver talks to the ARM
    test server.
    """
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        clock=clock,
        manual_clock=True,
        scheduler=False,
        driver_workers=4,
        driver_factory=storage.driver_factory,
    )


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    application = create_app(config)
    yield application
    shutdown(application)


@pytest.fixture
def make_key(app: Flask) -> Callable[..., tuple[str, str]]:
    """Create an API key in the app's database, as `cloudbackup keys create` does."""

    def make(project: str | None = None, read_only: bool = False) -> tuple[str, str]:
        with app.extensions["cloudbackup"].service.store.write() as session:
            return create_key(session, project_id=project, read_only=read_only)

    return make


@pytest.fixture
def org_key(make_key: Callable[..., tuple[str, str]]) -> tuple[str, str]:
    return make_key()


@pytest.fixture
def client(app: Flask, org_key: tuple[str, str]) -> ApiClient:
    """A test client authenticated with an organization key."""
    return ApiClient(app.test_client(), org_key)


@pytest.fixture
def driver(app: Flask) -> FlakyDriver:
    return app.extensions["cloudbackup"].service.driver
