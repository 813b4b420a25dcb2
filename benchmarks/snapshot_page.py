"""Benchmark: the first page of a cluster's snapshots costs the same at 10 or 10,000 snapshots (<= 1.5x)."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import START, Database, insert_fleet
from shimkit import ApiClient

from shim.app import create_app, shutdown
from shim.auth import create_key
from shim.clock import ManualClock
from shim.config import Config
from shim.service import new_id
from shim.store import Store, default_url, queries
from shim.store.models import Cluster, Snapshot

TARGET_RATIO = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pages", type=int, default=2000, help="pages read per cluster (default 2000)")
    parser.add_argument("--page-size", type=int, default=100, help="items per page (default 100, the API's)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cloudbackup-page-"))
    database = Database(args.database)
    store = Store(database.url() or default_url(work), pool_size=1)
    try:
        store.migrate()
        insert_fleet(store, 2, next_due_at=START + timedelta(days=1))
        with store.read() as session:
            small, large = (
                session.query(Cluster.id, Cluster.name, Cluster.project_id).order_by(Cluster.id).all()
            )
        for cluster, count in ((small, 10), (large, 10_000)):
            rows = [
                {
                    "id": new_id(),
                    "cluster_id": cluster.id,
                    "project_id": cluster.project_id,
                    "snapshot_type": "onDemand",
                    "status": "completed",
                    "region": "eastus2",
                    "created_at": START - timedelta(minutes=index),
                }
                for index in range(count)
            ]
            with store.write() as session:
                for start in range(0, len(rows), 500):
                    session.execute(Snapshot.__table__.insert(), rows[start : start + 500])
        queried, requested = {}, {}
        for label, cluster in (("10", small), ("10,000", large)):
            times = []
            with store.statements() as conn:
                for _ in range(args.pages):
                    began = time.perf_counter()
                    found, page, total = queries.snapshot_listing(
                        conn, cluster.project_id, cluster.name, offset=0, limit=args.page_size
                    )
                    times.append((time.perf_counter() - began) * 1000)
            assert found is not None and len(page) == min(args.page_size, total)
            queried[label] = statistics.median(times)
        # The whole request, as a client sees it minus the network: Digest, the query, the JSON.
        config = Config(
            data_dir=work,
            database_url=database.url(),
            manual_clock=True,
            clock=ManualClock(START),
            reconcile=False,
        )
        app = create_app(config)
        try:
            with app.extensions["cloudbackup"].service.store.write() as session:
                key = create_key(session, project_id=None, read_only=False)
            client = ApiClient(app.test_client(), key)
            for label, cluster in (("10", small), ("10,000", large)):
                path = f"/groups/{cluster.project_id}/clusters/{cluster.name}/backup/snapshots"
                path += f"?itemsPerPage={args.page_size}"
                times = []
                for _ in range(args.pages):
                    began = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200
                requested[label] = statistics.median(times)
        finally:
            shutdown(app)
    finally:
        store.close()
        database.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"snapshot_page: first page of {args.page_size} snapshots newest first, {args.database}")
    ok = True
    for what, timings in (("the query", queried), ("the GET request (test client)", requested)):
        ratio = timings["10,000"] / timings["10"]
        print(
            f"  {what}: median at 10 snapshots {timings['10']:.3f} ms, at 10,000 {timings['10,000']:.3f} ms;"
            f" ratio {ratio:.2f} (target <= {TARGET_RATIO})"
        )
        ok = ratio <= TARGET_RATIO
    print(f"  the request's ratio {'meets' if ok else 'does NOT meet'} the target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
