"""Creates and upgrades the database at start: a schema version table and ordered migrations."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Column, Connection, Integer, MetaData, Table, inspect, select, text

from shim.store.models import Base

log = logging.getLogger(__name__)

_version_metadata = MetaData()
schema_version = Table("schema_version", _version_metadata, Column("version", Integer, nullable=False))


def _v1_initial_tables(conn: Connection) -> None:
    # Version 1 is the models as first shipped. A later model change gets its own migration (ALTER
    # TABLE ...) appended below; this one must then be frozen to the version 1 table definitions.
    Base.metadata.create_all(conn)


V2_COLUMNS = (
    ("clusters", "deletion_protection", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("clusters", "backup_deletion_protection", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("snapshots", "expires_at", "TIMESTAMP NULL"),
)


def _v2_protection_and_expiry(conn: Connection) -> None:
    # Version 1 still creates from the current models, so a fresh database already has these columns.
    inspector = inspect(conn)
    for table, name, definition in V2_COLUMNS:
        if name not in {column["name"] for column in inspector.get_columns(table)}:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {definition}"))


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial_tables, _v2_protection_and_expiry]
LATEST = len(MIGRATIONS)


def migrate(conn: Connection) -> int:
    """Bring the database to the latest version inside the caller's transaction; return that version."""
    _version_metadata.create_all(conn)
    current = conn.execute(select(schema_version.c.version)).scalar()
    if current is None:
        conn.execute(schema_version.insert().values(version=0))
        current = 0
    if current > LATEST:
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this cloudbackup ({LATEST}); upgrade it"
        )
    for version in range(current + 1, LATEST + 1):
        log.info("migrating the database to schema version %d", version)
        MIGRATIONS[version - 1](conn)
        conn.execute(schema_version.update().values(version=version))
    return LATEST
