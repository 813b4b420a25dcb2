"""Databases made by cloudbackup 0.1.0 (a schema_version table, no Alembic), and their adoption at 0001."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

# The table 0.1.0 kept its own schema version in; version 1 is the only one a release wrote.
VERSION_TABLE = "schema_version"
ADOPTABLE_VERSION = 1
RELEASE = "cloudbackup 0.1.0"

# Revision 0001 as this module brings a 0.1.0 database to it. Frozen here on purpose: today's models
# move on with later revisions, while a 0.1.0 database needs exactly the difference to 0001.
# Timestamps are sa.DateTime, the column type shim.store.types.UTCDateTime stores as.
REVISION = "0001"


class LegacyVersionError(RuntimeError):
    """A schema_version table holding a version no cloudbackup release wrote."""


def legacy_version(conn: Connection) -> int | None:
    """The version in a database's schema_version table (None: no such table, so not made by 0.1.0)."""
    if VERSION_TABLE not in inspect(conn).get_table_names():
        return None
    table = sa.table(VERSION_TABLE, sa.column("version", sa.Integer))
    found = conn.execute(sa.select(table.c.version)).scalar()
    if found != ADOPTABLE_VERSION:
        raise LegacyVersionError(
            f"the database's {VERSION_TABLE} table says {found}, but {RELEASE} wrote {ADOPTABLE_VERSION}"
            " and no other release used that table: this cloudbackup cannot tell what its schema is;"
            " restore the database from a backup made by a cloudbackup release"
        )
    return found


def adopt(conn: Connection) -> None:
    """Bring a 0.1.0 database to revision 0001's shape in the caller's transaction; drop schema_version.

    The caller then stamps 0001 (Alembic's bookkeeping) and upgrades to head as for any database.
    """
    op = Operations(MigrationContext.configure(conn))
    # Plain ALTERs, not batch mode: SQLite's ALTER TABLE does each of these (a NOT NULL column given its
    # literal default), while batch mode would copy `clusters`, whose DROP fails under the foreign keys
    # of the rows pointing at it (and PRAGMA foreign_keys cannot change inside this transaction).
    for column in (
        sa.Column("deletion_protection", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("backup_deletion_protection", sa.Boolean(), server_default=sa.false(), nullable=False),
    ):
        op.add_column("clusters", column)
    op.add_column("restore_jobs", sa.Column("owner", sa.String(length=32), nullable=True))
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(), nullable=True))
    op.add_column("snapshots", sa.Column("owner", sa.String(length=32), nullable=True))
    op.add_column("snapshots", sa.Column("expires_at", sa.DateTime(), nullable=True))
    # A page of snapshots, newest first, is read straight off this index: it gained id, the tiebreak.
    op.drop_index("ix_snapshots_cluster_created", table_name="snapshots")
    op.create_index(
        "ix_snapshots_cluster_created", "snapshots", ["cluster_id", "created_at", "id"], unique=False
    )

    op.create_table(
        "digest_nonce_uses",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("nc", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", "nc"),
    )
    op.create_index("ix_digest_nonce_uses_expires_at", "digest_nonce_uses", ["expires_at"], unique=False)
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_replicas_lease_until", "replicas", ["lease_until"], unique=False)
    op.drop_table(VERSION_TABLE)
