"""Fuzzing the shim's own OpenAPI document, over HTTP, with Digest: no 5xx, answers as documented."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seed_hypothesis
from requests.auth import HTTPDigestAuth
from schemathesis import checks
from shimkit import cluster_body
from waitress.server import create_server

from shim.app import create_app, shutdown
from shim.auth import create_key
from shim.config import Config

OPENAPI = "/api/atlas/v1.0/openapi.json"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_shim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, tuple[str, str]]]:
    """A shim on the real clock (no /admin/clock: moving it is not what a fuzzer should spend time on)
    behind waitress on loopback, and an organization key."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(replace(Config(data_dir=data_dir), scheduler=False))
    with app.extensions["cloudbackup"].service.store.write() as session:
        key = create_key(session, project_id=None, read_only=False)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", key  # type: ignore[union-attr]
    finally:
        server.close()
        thread.join(timeout=10)
        shutdown(app)


@pytest.fixture(scope="module")
def digest_session(fuzzed_shim: tuple[str, tuple[str, str]]) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = HTTPDigestAuth(*fuzzed_shim[1])
        yield session


_WORLD: dict[str, str] = {}


def world(url: str, session: requests.Session) -> str:
    """A project with a backed-up cluster rs1, made again if a fuzzed DELETE removed either."""
    base = url + "/api/atlas/v1.0/groups"
    project_id = _WORLD.get(url, "")
    if not project_id or session.get(f"{base}/{project_id}", timeout=60).status_code == 404:
        created = session.post(base, json={"name": f"fuzzed-{len(_WORLD)}-{time.time_ns()}"}, timeout=60)
        assert created.status_code == 201, created.text
        project_id = _WORLD[url] = created.json()["id"]
    cluster = f"{base}/{project_id}/clusters/rs1"
    if session.get(cluster, timeout=60).status_code == 404:
        made = session.post(f"{base}/{project_id}/clusters", json=cluster_body("rs1"), timeout=60)
        assert made.status_code == 201, made.text
    # Best effort: a fuzzed PATCH may have made rs1 something backup refuses (and that is fine).
    session.put(cluster + "/backup", json={"method": "CLOUD_PROVIDER_SNAPSHOTS"}, timeout=60)
    return project_id


def fuzz_operation(
    operation: Any, url: str, session: requests.Session, examples: int, seed: int
) -> Counter[int]:
    """Send up to `examples` generated requests to one operation; return how many got each status."""
    statuses: Counter[int] = Counter()

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @seed_hypothesis(seed)
    def one(case: schemathesis.Case) -> None:
        # Every other request goes to the project and cluster that exist, so that the checks behind
        # the 404s of random ids are fuzzed too.
        if sum(statuses.values()) % 2 == 0:
            project_id = world(url, session)
            for name, value in (("group_id", project_id), ("cluster_name", "rs1")):
                if name in (case.path_parameters or {}):
                    case.path_parameters[name] = value
        response = case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=60)
        statuses[response.status_code] += 1

    one()
    return statuses


def fuzz(url: str, session: requests.Session, examples: int, seed: int) -> dict[str, Counter[int]]:
    """Fuzz every operation of the shim's document; statuses answered, per operation."""
    schema = schemathesis.openapi.from_url(url + OPENAPI)
    counts: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        counts[f"{operation.method.upper()} {operation.path}"] = fuzz_operation(
            operation, url, session, examples, seed
        )
    return counts


def test_fuzzed_requests_get_no_server_error_and_answers_match_the_openapi_document(
    fuzzed_shim: tuple[str, tuple[str, str]], digest_session: requests.Session
) -> None:
    counts = fuzz(fuzzed_shim[0], digest_session, examples=25, seed=8)
    statuses = sum(counts.values(), Counter())
    print({operation: dict(answers) for operation, answers in counts.items()})
    assert len(counts) >= 10 and statuses.total() >= 200, counts
    # Digest worked: the requests reached the API's checks, not just its 401.
    assert statuses[401] < statuses.total() / 10 and statuses[400] and statuses[404], statuses
