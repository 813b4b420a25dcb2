"""snapshot counts kept by triggers (a listing's exact totalCount in one lookup); expires_at indexed"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# PostgreSQL: statement-level triggers, one upsert per statement, the clusters' counters taken in
# cluster_id order; two statements changing the same clusters then lock them in the same order and never
# deadlock. The upsert also creates a cluster's counter with its first snapshot.
POSTGRESQL = [
    """
    CREATE FUNCTION cloudbackup_count_added_snapshots() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO snapshot_counts AS c (cluster_id, total)
        SELECT cluster_id, count(*) FROM added_snapshots GROUP BY cluster_id ORDER BY cluster_id
        ON CONFLICT (cluster_id) DO UPDATE SET total = c.total + excluded.total;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION cloudbackup_count_removed_snapshots() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO snapshot_counts AS c (cluster_id, total)
        SELECT cluster_id, -count(*) FROM removed_snapshots GROUP BY cluster_id ORDER BY cluster_id
        ON CONFLICT (cluster_id) DO UPDATE SET total = c.total + excluded.total;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION cloudbackup_forget_snapshot_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM snapshot_counts WHERE cluster_id = OLD.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER snapshots_count_added AFTER INSERT ON snapshots
    REFERENCING NEW TABLE AS added_snapshots FOR EACH STATEMENT
    EXECUTE FUNCTION cloudbackup_count_added_snapshots()
    """,
    """
    CREATE TRIGGER snapshots_count_removed AFTER DELETE ON snapshots
    REFERENCING OLD TABLE AS removed_snapshots FOR EACH STATEMENT
    EXECUTE FUNCTION cloudbackup_count_removed_snapshots()
    """,
    """
    CREATE TRIGGER clusters_forget_snapshot_count AFTER DELETE ON clusters
    FOR EACH ROW EXECUTE FUNCTION cloudbackup_forget_snapshot_count()
    """,
]

# SQLite has row-level triggers only; it has one writer at a time, so their order cannot deadlock.
SQLITE = [
    """
    CREATE TRIGGER snapshots_count_added AFTER INSERT ON snapshots FOR EACH ROW BEGIN
        INSERT INTO snapshot_counts (cluster_id, total) VALUES (NEW.cluster_id, 1)
        ON CONFLICT (cluster_id) DO UPDATE SET total = total + 1;
    END
    """,
    """
    CREATE TRIGGER snapshots_count_removed AFTER DELETE ON snapshots FOR EACH ROW BEGIN
        UPDATE snapshot_counts SET total = total - 1 WHERE cluster_id = OLD.cluster_id;
    END
    """,
    """
    CREATE TRIGGER clusters_forget_snapshot_count AFTER DELETE ON clusters FOR EACH ROW BEGIN
        DELETE FROM snapshot_counts WHERE cluster_id = OLD.id;
    END
    """,
]


def upgrade() -> None:
    # Every scheduler tick reads the earliest expires_at: without the index, a scan of every snapshot.
    op.create_index(op.f("ix_snapshots_expires_at"), "snapshots", ["expires_at"], unique=False)
    op.create_table(
        "snapshot_counts",
        sa.Column("cluster_id", sa.String(length=24), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cluster_id"),
    )
    # The counts of the snapshots already there, before the triggers take over.
    op.execute(
        "INSERT INTO snapshot_counts (cluster_id, total) "
        "SELECT cluster_id, count(*) FROM snapshots GROUP BY cluster_id"
    )
    for statement in POSTGRESQL if op.get_context().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    for trigger, table in (
        ("clusters_forget_snapshot_count", "clusters"),
        ("snapshots_count_removed", "snapshots"),
        ("snapshots_count_added", "snapshots"),
    ):
        if op.get_context().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        else:
            op.execute(f"DROP TRIGGER {trigger}")
    if op.get_context().dialect.name == "postgresql":
        for function in (
            "cloudbackup_forget_snapshot_count",
            "cloudbackup_count_removed_snapshots",
            "cloudbackup_count_added_snapshots",
        ):
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("snapshot_counts")
    op.drop_index(op.f("ix_snapshots_expires_at"), table_name="snapshots")
