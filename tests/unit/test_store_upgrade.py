"""A version 1 database gains the deletion protection and snapshot expiry columns, keeping its rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from shim.store import Store, default_url
from shim.store.migrations import V2_COLUMNS, schema_version
from shim.store.models import Cluster


def test_a_version_1_database_is_upgraded_and_its_clusters_are_unprotected(tmp_path: Path) -> None:
    store = Store(default_url(tmp_path))
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO projects (id, name, created_at) VALUES ('" + "p" * 24 + "', 'p', '2024-01-01')")
        )
        conn.execute(
            text(
                "INSERT INTO clusters (id, project_id, name, provider_name, instance_size, cluster_type,"
                " regions, disk_size_gb, state, created_at) VALUES ('"
                + "c" * 24
                + "', '"
                + "p" * 24
                + "', 'old', 'AZURE', 'M10', 'REPLICASET', '{}', 1, 'IDLE', '2024-01-01')"
            )
        )
        # What a version 1 database looks like: none of version 2's columns.
        for table, name, _ in V2_COLUMNS:
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {name}"))
        conn.execute(schema_version.update().values(version=1))
    store.close()

    upgraded = Store(default_url(tmp_path))
    upgraded.migrate()
    with upgraded.read() as session:
        cluster = session.get(Cluster, "c" * 24)
        assert cluster is not None
        assert (cluster.deletion_protection, cluster.backup_deletion_protection) == (False, False)
    with upgraded.engine.connect() as conn:
        assert conn.execute(text("SELECT expires_at FROM snapshots")).all() == []
    upgraded.close()
