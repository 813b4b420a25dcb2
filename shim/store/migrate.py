"""Schema migrations with Alembic: the revision a database is at, upgrades under a lock, offline SQL."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from shim.store import legacy

if TYPE_CHECKING:
    from shim.store.engine import Store

log = logging.getLogger(__name__)

ALEMBIC_DIR = Path(__file__).with_name("alembic")
# pg_advisory_xact_lock's key: every replica upgrading at once queues here, then finds the work done.
MIGRATION_LOCK = 0x63_6C_6F_75_64  # "cloud"


def alembic_config(url: str | None = None, output: io.StringIO | None = None) -> AlembicConfig:
    """Alembic's settings, in code: the scripts shipped inside the package, no alembic.ini to find."""
    config = AlembicConfig(output_buffer=output)
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The revision this cloudbackup's code expects."""
    found = scripts().get_current_head()
    assert found is not None, "the package ships no migration"
    return found


class SchemaError(RuntimeError):
    """The database's schema is not the one this code runs on; the message says what to do."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands against this code: empty, behind, current or ahead (a newer cloudbackup's)."""

    revision: str | None
    head: str
    status: str
    # The release that made a database before Alembic kept its revision (cloudbackup 0.1.0), or None.
    made_by: str | None = None

    def describe(self) -> str:
        """What the database is at: a revision, `empty`, or the release that made it."""
        if self.made_by is not None:
            return f"made by {self.made_by}"
        return self.revision or "empty"

    def problem(self) -> str | None:
        """One line saying why `serve` cannot use this database as it is, or None."""
        if self.made_by is not None:
            return (
                f"the database was made by {self.made_by}, before this cloudbackup's schema revisions"
                f" (head {self.head}): back it up, then run `cloudbackup db upgrade` (or serve --upgrade-db)"
            )
        if self.status == "behind":
            return (
                f"the database schema is at revision {self.revision}, older than this cloudbackup's"
                f" {self.head}: run `cloudbackup db upgrade` (or serve --upgrade-db)"
            )
        if self.status == "ahead":
            return (
                f"the database schema is at revision {self.revision}, which this cloudbackup does not know"
                f" (a newer version migrated it; its head is {self.head}): run that newer cloudbackup"
            )
        return None


def schema_state(conn: Connection) -> SchemaState:
    revision = None
    if "alembic_version" in inspect(conn).get_table_names():
        revision = MigrationContext.configure(conn).get_current_revision()
    wanted = head()
    if revision is None:
        try:
            made_by_0_1_0 = legacy.legacy_version(conn) is not None
        except legacy.LegacyVersionError as error:
            raise SchemaError(str(error)) from None
        if made_by_0_1_0:
            return SchemaState(None, wanted, "behind", made_by=legacy.RELEASE)
        return SchemaState(None, wanted, "empty")
    if revision == wanted:
        return SchemaState(revision, wanted, "current")
    known = {script.revision for script in scripts().walk_revisions()}
    return SchemaState(revision, wanted, "behind" if revision in known else "ahead")


def state(store: Store) -> SchemaState:
    with store.connect() as conn:
        return schema_state(conn)


def upgrade(store: Store) -> SchemaState:
    """Bring the database to the head revision: one transaction, one migrating replica at a time."""
    # On SQLite cloudbackup_write makes the transaction BEGIN IMMEDIATE: the write lock, up front.
    with store.engine.execution_options(cloudbackup_write=True).connect() as conn, conn.begin():
        if not store.is_sqlite:
            # Held to the commit: a replica starting meanwhile waits, then finds the schema at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        found = schema_state(conn)
        if found.status == "ahead":
            raise SchemaError(found.problem())
        if found.status != "current":
            config = alembic_config()
            config.attributes["connection"] = conn
            since = found.revision
            if found.made_by is not None:
                # Its tables become revision 0001's; from there it upgrades as any database does.
                log.info("adopting a database made by %s at revision %s", found.made_by, legacy.REVISION)
                legacy.adopt(conn)
                command.stamp(config, legacy.REVISION)
                since = legacy.REVISION
            log.info("upgrading the database schema from %s to %s", since or "nothing", found.head)
            command.upgrade(config, "head")
        return schema_state(conn)


def prepare(store: Store, *, upgrade_behind: bool) -> SchemaState:
    """At start: an empty database is created at head; one behind is upgraded only when asked."""
    found = state(store)
    if found.status == "current":
        return found
    if found.status == "empty" or (found.status == "behind" and upgrade_behind):
        return upgrade(store)
    raise SchemaError(found.problem())


def offline_sql(url: str, since: str | None = None) -> str:
    """The SQL that upgrades a database of `url`'s kind from `since` (default: empty) to head, for a DBA."""
    output = io.StringIO()
    command.upgrade(alembic_config(url, output), f"{since}:head" if since else "head", sql=True)
    return output.getvalue()


def new_revision(url: str, message: str) -> str:
    """Write a revision script from the difference between the models and a database at head.

    For developers: run against an empty scratch database it regenerates the first revision.
    """
    from shim.store.engine import Store

    store = Store(url, pool_size=1)
    try:
        with store.engine.execution_options(cloudbackup_write=True).connect() as conn, conn.begin():
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            # Numbered revisions (0001, 0002, ...) so that regenerating one gives the same file name.
            number = f"{len(list(scripts().walk_revisions())) + 1:04d}"
            scripts_made = command.revision(config, message=message, autogenerate=True, rev_id=number)
    finally:
        store.close()
    made = scripts_made[0] if isinstance(scripts_made, list) else scripts_made
    return str(made.path) if made is not None else ""
