"""An idle scheduler tick reads the big tables through indexes only: its cost stays flat as they grow."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from shimkit import ApiClient, advance, create_cluster, create_project, enable_backup
from sqlalchemy import event, text

BIG_TABLES = ("snapshots", "clusters", "restore_jobs")


def statements_of_a_tick(app: Flask) -> list[tuple[str, Any]]:
    service = app.extensions["cloudbackup"].service
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(service.store.engine, "before_cursor_execute", record)
    try:
        assert service.tick() == 0
    finally:
        event.remove(service.store.engine, "before_cursor_execute", record)
    return [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]


def full_scans(app: Flask, statement: str, parameters: Any) -> list[str]:
    """The plan's lines that read one of the big tables in full (every row, or every index entry)."""
    store = app.extensions["cloudbackup"].service.store
    with store.engine.connect() as conn:
        if store.is_sqlite:
            plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            # SEARCH without an index (as min() of an unindexed column shows) reads every row too.
            return [
                line
                for line in plan
                if re.match(rf"(SCAN|SEARCH) ({'|'.join(BIG_TABLES)})\b", line)
                and not (line.startswith("SEARCH") and "INDEX" in line)
            ]
        # Tables this small would be scanned whatever the indexes; forbid that to see whether one serves.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
        return [line for line in plan if re.search(rf"Seq Scan on ({'|'.join(BIG_TABLES)})\b", line)]


def test_an_idle_tick_reads_snapshots_and_clusters_through_indexes_only(
    app: Flask, client: ApiClient
) -> None:
    project_id = create_project(client)
    for name in ("rs1", "rs2"):
        create_cluster(client, project_id, name)
        enable_backup(client, project_id, name)
    # An on-demand snapshot that expires: the tick looks for the earliest expiry too.
    base = f"/groups/{project_id}/clusters/rs1/backup/snapshots"
    assert client.post(base, {"retentionInDays": 3}).status_code == 201
    advance(client, 2 * 24 * 3600)
    statements = statements_of_a_tick(app)
    assert any("snapshots" in statement for statement, _ in statements)
    for statement, parameters in statements:
        assert full_scans(app, statement, parameters) == [], statement
