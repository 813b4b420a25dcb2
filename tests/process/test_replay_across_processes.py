"""Two `cloudbackup serve` replicas on one PostgreSQL database: a header one accepted, the other refuses."""

from __future__ import annotations

from pathlib import Path

import requests
from pgserver import PostgresServer
from requests.auth import HTTPDigestAuth
from test_serve import BASE, Shim, create_key


def test_a_header_accepted_by_one_shim_process_is_refused_when_replayed_to_another(
    data_dir: Path, postgres: PostgresServer
) -> None:
    # Replicas share a database on PostgreSQL (SQLite is locked to one `serve`), and a data directory.
    name = postgres.create_database()
    database = postgres.url(name)
    key = create_key(database)
    first = Shim(data_dir, "--manual-clock", "--database", database)
    second = Shim(data_dir, "--manual-clock", "--database", database)
    try:
        with requests.Session() as session:
            session.auth = HTTPDigestAuth(*key)
            created = session.post(first.url + BASE + "/groups", json={"name": "once"}, timeout=30)
            assert created.status_code == 201
            captured = created.request.headers["Authorization"]
        project_id = created.json()["id"]

        # The same signed request, sent again (to the other process, then to the first), with another body.
        for shim in (second, first):
            replayed = requests.post(
                shim.url + BASE + "/groups",
                json={"name": "twice"},
                headers={"Authorization": captured},
                timeout=30,
            )
            assert replayed.status_code == 401
            assert replayed.json()["errorCode"] == "DIGEST_NONCE_REUSED"
            assert "stale=true" in replayed.headers["WWW-Authenticate"]

        with requests.Session() as session:
            session.auth = HTTPDigestAuth(*key)
            # A normal client still works against both, counting nc up on one nonce.
            for shim in (second, first, second):
                listing = session.get(shim.url + BASE + "/groups", timeout=30)
                assert listing.status_code == 200
                assert [p["id"] for p in listing.json()["results"]] == [project_id]
    finally:
        for shim in (first, second):
            code, log = shim.stop()
            assert code == 0, log
        postgres.drop_database(name)
