"""Long fuzz run: schemathesis against the shim's OpenAPI document, with Digest; prints the counts."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth
from waitress.server import create_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from test_fuzz import fuzz

from shim.app import create_app, shutdown
from shim.auth import create_key
from shim.config import Config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=200, help="requests per operation (default 200)")
    parser.add_argument("--seed", type=int, default=2026, help="hypothesis seed (default 2026)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cloudbackup-fuzz-"))
    app = create_app(Config(data_dir=work, scheduler=False))
    with app.extensions["cloudbackup"].service.store.write() as session:
        key = create_key(session, project_id=None, read_only=False)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    started = time.perf_counter()
    failure = None
    counts: dict[str, Counter[int]] = {}
    try:
        with requests.Session() as session:
            session.auth = HTTPDigestAuth(*key)
            counts = fuzz(url, session, examples=args.examples, seed=args.seed)
    except Exception as error:  # a failed check: report it with the counts so far
        failure = error
    finally:
        server.close()
        thread.join(timeout=10)
        shutdown(app)
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    statuses = sum(counts.values(), Counter())
    for operation, answers in counts.items():
        print(f"{operation}: {dict(sorted(answers.items()))}")
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    print(
        f"{statuses.total()} requests over {len(counts)} operations in {elapsed:.0f} s; "
        f"statuses {dict(sorted(statuses.items()))}; server errors {server_errors}; "
        f"check failures {'1: ' + str(failure).splitlines()[0] if failure else 0}"
    )
    return 1 if failure or server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
