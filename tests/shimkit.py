"""What the shim's tests share: a Digest-speaking test client, a driver that fails on demand, and helpers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shim.drivers.base import DriverError, OperationStatus, StoredSnapshot, VolumeSpec
from shim.drivers.local import LocalDriver

BASE = "/api/atlas/v1.0"
START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


# --- HTTP Digest, written independently of shim/auth.py ----------------------------------------------


def parse_challenge(header: str) -> dict[str, str]:
    """The parameters of one `Digest ...` WWW-Authenticate value."""
    assert header.startswith("Digest "), header
    return {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', header[7:])}


def first_challenge(app: Flask) -> dict[str, str]:
    """The Digest challenge the app answers an unsigned request with."""
    response = app.test_client().get(BASE + "/groups")
    return parse_challenge(response.headers.getlist("WWW-Authenticate")[0])


def digest_authorization(
    method: str,
    uri: str,
    user: str,
    password: str,
    challenge: dict[str, str],
    nc: int,
    algorithm: str = "MD5",
    qop: str = "auth",
    body: bytes = b"",
) -> str:
    """An Authorization header answering `challenge` (qop=auth, or auth-int signing `body`), per RFC 7616."""
    hash_fn = hashlib.sha256 if algorithm.upper().startswith("SHA-256") else hashlib.md5

    def h(text: str) -> str:
        return hash_fn(text.encode()).hexdigest()

    cnonce = secrets.token_hex(8)
    count = f"{nc:08x}"
    ha1 = h(f"{user}:{challenge['realm']}:{password}")
    ha2 = h(f"{method}:{uri}:{hash_fn(body).hexdigest()}" if qop == "auth-int" else f"{method}:{uri}")
    response = h(f"{ha1}:{challenge['nonce']}:{count}:{cnonce}:{qop}:{ha2}")
    return (
        f'Digest username="{user}", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", uri="{uri}", '
        f'algorithm={algorithm}, qop={qop}, nc={count}, cnonce="{cnonce}", response="{response}", '
        f'opaque="{challenge.get("opaque", "")}"'
    )


class ApiClient:
    """Flask's test client speaking HTTP Digest with one key; paths may omit /api/atlas/v1.0."""

    def __init__(self, client: FlaskClient, key: tuple[str, str] | None, algorithm: str = "MD5") -> None:
        self.client = client
        self.key = key
        self.algorithm = algorithm
        self._challenge: dict[str, str] | None = None
        self._nc = 0

    @staticmethod
    def url(path: str) -> str:
        return path if path.startswith(("/api/", "/healthz", "/metrics")) or path == "/" else BASE + path

    def request(self, method: str, path: str, json_body: Any = None, **kwargs: Any) -> TestResponse:
        url = self.url(path)
        if json_body is not None:
            kwargs["json"] = json_body
        if self.key is None:
            return self.client.open(url, method=method, **kwargs)
        for _attempt in range(3):
            if self._challenge is None:
                first = self.client.open(BASE + "/groups", method="GET")
                assert first.status_code == 401, first.get_data(as_text=True)
                self._remember(first)
            self._nc += 1
            assert self._challenge is not None
            headers = dict(kwargs.pop("headers", None) or {})
            headers["Authorization"] = digest_authorization(
                method, url, self.key[0], self.key[1], self._challenge, self._nc, self.algorithm
            )
            response = self.client.open(url, method=method, headers=headers, **kwargs)
            if response.status_code == 401 and "stale=true" in response.headers.get("WWW-Authenticate", ""):
                self._remember(response)
                continue
            return response
        return response

    def _remember(self, response: TestResponse) -> None:
        values = response.headers.getlist("WWW-Authenticate")
        wanted = next(v for v in values if f"algorithm={self.algorithm}" in v)
        self._challenge = parse_challenge(wanted)
        self._nc = 0

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, json_body, **kwargs)

    def put(self, path: str, json_body: Any = None, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, json_body, **kwargs)

    def patch(self, path: str, json_body: Any = None, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, json_body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)

    def as_key(self, key: tuple[str, str]) -> ApiClient:
        return ApiClient(self.client, key, self.algorithm)


# --- a driver that fails on demand -----------------------------------------------------------------


class FlakyDriver:
    """The local driver, except that the next `fail_snapshots` snapshots fail (as a cloud would report)."""

    name = "local"
    cross_region_restore = True

    def __init__(self, inner: LocalDriver) -> None:
        self.inner = inner
        self.fail_snapshots = 0
        self.fail_at_start = False
        self.started: list[str] = []
        self._failed_tokens: set[str] = set()

    @property
    def data_dir(self) -> Path:
        return self.inner.data_dir

    def create_volume(self, spec: VolumeSpec) -> str:
        return self.inner.create_volume(spec)

    def delete_volume(self, handle: str) -> None:
        self.inner.delete_volume(handle)

    def resize_volume(self, handle: str, size_gb: int) -> None:
        self.inner.resize_volume(handle, size_gb)

    def start_snapshot(
        self, *, volume_handle: str, region: str, snapshot_id: str, tags: dict[str, str]
    ) -> str:
        self.started.append(snapshot_id)
        if self.fail_snapshots > 0:
            self.fail_snapshots -= 1
            if self.fail_at_start:
                raise DriverError("OperationNotAllowed", "injected failure at start")
            token = f"failed:{snapshot_id}"
            self._failed_tokens.add(token)
            return token
        return self.inner.start_snapshot(
            volume_handle=volume_handle, region=region, snapshot_id=snapshot_id, tags=tags
        )

    def start_restore(
        self, *, snapshot_handle: str, target_volume_handle: str, region: str, expected_checksum: str | None
    ) -> str:
        return self.inner.start_restore(
            snapshot_handle=snapshot_handle,
            target_volume_handle=target_volume_handle,
            region=region,
            expected_checksum=expected_checksum,
        )

    def poll(self, token: str) -> OperationStatus:
        if token in self._failed_tokens:
            return OperationStatus("failed", error_code="InternalDiskError", error_message="injected failure")
        return self.inner.poll(token)

    def delete_snapshot(self, handle: str) -> None:
        self.inner.delete_snapshot(handle)

    def forget_operation(self, token: str) -> None:
        if token not in self._failed_tokens:
            self.inner.forget_operation(token)

    def snapshot_exists(self, handle: str) -> bool:
        return self.inner.snapshot_exists(handle)

    def list_snapshots(self) -> list[StoredSnapshot]:
        return self.inner.list_snapshots()

    def close(self) -> None:
        self.inner.close()


# --- helpers tests share ---------------------------------------------------------------------------


def cluster_body(name: str = "rs1", **overrides: Any) -> dict[str, Any]:
    """An Azure M10 replica set in eastus2 (preferred) and westus2, 1 GiB volumes."""
    body: dict[str, Any] = {
        "name": name,
        "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
        "clusterType": "REPLICASET",
        "replicationSpecs": [
            {
                "regionsConfig": {
                    "eastus2": {"priority": 7, "electableNodes": 3},
                    "westus2": {"priority": 6, "electableNodes": 2},
                }
            }
        ],
        "diskSizeGB": 1,
    }
    body.update(overrides)
    return body


def create_project(client: ApiClient, name: str = "proj") -> str:
    response = client.post("/groups", {"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def create_cluster(client: ApiClient, project_id: str, name: str = "rs1", **overrides: Any) -> dict[str, Any]:
    response = client.post(f"/groups/{project_id}/clusters", cluster_body(name, **overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def enable_backup(
    client: ApiClient, project_id: str, name: str = "rs1", method: str = "CLOUD_PROVIDER_SNAPSHOTS"
) -> dict[str, Any]:
    response = client.put(f"/groups/{project_id}/clusters/{name}/backup", {"method": method})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def advance(client: ApiClient, seconds: int) -> str:
    response = client.post("/admin/clock", {"advanceSeconds": seconds})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["now"]


def member_volumes(app: Any, project_id: str, name: str) -> dict[tuple[str, int], str]:
    """(region, member) -> volume handle of a cluster, as the shim's database holds them."""
    from shim.store import queries

    service = app.extensions["cloudbackup"].service
    with service.store.read() as session:
        cluster = queries.cluster(session, project_id, name)
        assert cluster is not None
        return {(v.region, v.member): v.handle or "" for v in queries.volumes(session, cluster.id)}


def snapshot_handle(app: Any, snapshot_id: str) -> str:
    """Where a snapshot is in storage, as the shim's database holds it (the API does not show it)."""
    from shim.store.models import Snapshot

    with app.extensions["cloudbackup"].service.store.read() as session:
        row = session.get(Snapshot, snapshot_id)
        assert row is not None and row.handle, snapshot_id
        return row.handle


def settle(client: ApiClient) -> None:
    """Return once every running snapshot and restore finished (a cloud driver runs them in the background).

    Moving the manual clock by nothing takes no slot; it only awaits the work in flight.
    """
    advance(client, 0)


def stored_snapshot_files(data_dir: Path) -> dict[str, set[str]]:
    """Region -> snapshot ids whose data file is in storage: what is really on disk."""
    found: dict[str, set[str]] = {}
    root = data_dir / "snapshots"
    if root.is_dir():
        for region in root.iterdir():
            ids = {p.name.removesuffix(".snap") for p in region.glob("*.snap")}
            if ids:
                found[region.name] = ids
    return found


def all_stored_ids(data_dir: Path) -> set[str]:
    return {sid for ids in stored_snapshot_files(data_dir).values() for sid in ids}


def write_volume_data(data_dir: Path, handle: str, data: bytes, offset: int = 0) -> None:
    """Put bytes into a local volume file, as a database process would."""
    with open(data_dir / handle, "r+b") as volume:
        volume.seek(offset)
        volume.write(data)
        volume.flush()
        os.fsync(volume.fileno())


def dump(response: TestResponse) -> str:
    return json.dumps(response.get_json(), indent=1)


def _data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    """The (start, end) ranges of a file that hold data; the rest are holes, which read as zeros."""
    ranges: list[tuple[int, int]] = []
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after position
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        ranges.append((start, end))
        position = end
    return ranges


def file_sha256(path: Path) -> str:
    """The SHA-256 of a (sparse) file's whole content, holes fed as zeros without reading them."""
    digest = hashlib.sha256()
    zeros = bytes(1 << 20)
    with open(path, "rb") as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        position = 0
        for start, end in [*_data_ranges(fd, size), (size, size)]:
            while position < start:
                step = min(len(zeros), start - position)
                digest.update(zeros[:step])
                position += step
            handle.seek(start)
            while position < end:
                chunk = handle.read(min(1 << 20, end - position))
                digest.update(chunk)
                position += len(chunk)
    return digest.hexdigest()


def content_fingerprint(path: Path) -> tuple[int, str]:
    """(size, SHA-256 of every non-zero 64 KiB block with its offset): equal exactly when the contents are.

    A cheap stand-in for the SHA-256 of a 1 GiB sparse file that holds a few bytes of data.
    """
    digest = hashlib.sha256()
    block = 64 << 10
    with open(path, "rb") as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        for start, end in _data_ranges(fd, size):
            offset = start - start % block
            handle.seek(offset)
            while offset < end:
                chunk = handle.read(block)
                if chunk.strip(b"\0"):
                    digest.update(offset.to_bytes(8, "big") + chunk)
                offset += block
    return size, digest.hexdigest()


class SlowDriver(FlakyDriver):
    """The local driver acting as a cloud: each operation reports inProgress for its first `polls` polls."""

    def __init__(self, inner: LocalDriver, polls: int = 2) -> None:
        super().__init__(inner)
        self.polls = polls
        self._seen: dict[str, int] = {}

    def poll(self, token: str) -> OperationStatus:
        seen = self._seen.get(token, 0)
        self._seen[token] = seen + 1
        if seen < self.polls:
            return OperationStatus("inProgress")
        return super().poll(token)
