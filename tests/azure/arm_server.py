"""An HTTPS server answering like Azure Resource Manager for Microsoft.Compute disks and snapshots (tests)."""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import trustme

GIB = 1 << 30
KINDS = ("disks", "snapshots")
# Content is modeled sparsely, in pages: a 1 GiB disk with two writes holds two pages, not a gigabyte.
PAGE_SIZE = 64 * 1024

_RESOURCE_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.Compute/(?P<kind>disks|snapshots)(?:/(?P<name>[^/]+))?/?$",
    re.IGNORECASE,
)
_OPERATION_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Compute/locations/(?P<location>[^/]+)"
    r"/DiskOperations/(?P<op>[^/]+)/?$",
    re.IGNORECASE,
)
_RESOURCE_ID = re.compile(
    r"^/?subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.Compute/(?P<kind>disks|snapshots)/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _norm_location(location: str) -> str:
    return location.replace(" ", "").lower()


class _ArmError(Exception):
    """An answer with ARM's error body: {"error": {"code", "message"}}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class _Resource:
    kind: str
    subscription: str
    group: str
    name: str
    location: str
    tags: dict[str, str]
    sku: dict[str, Any] | None
    properties: dict[str, Any]
    pages: dict[int, bytes] = field(default_factory=dict)  # page index -> PAGE_SIZE bytes; absent: zeros
    state: str = "Creating"
    seq: int = 0

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.group}"
            f"/providers/Microsoft.Compute/{self.kind}/{self.name}"
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": f"Microsoft.Compute/{self.kind}",
            "location": self.location,
            "tags": dict(self.tags),
            "properties": {**self.properties, "provisioningState": self.state},
        }
        if self.sku is not None:
            body["sku"] = dict(self.sku)
        return body


@dataclass
class _Operation:
    id: str
    kind: str  # create | update | delete
    key: tuple[str, str, str, str]
    location: str
    started: float
    due: float
    started_iso: str
    error: dict[str, str] | None = None
    done: bool = False
    ended_iso: str | None = None
    output: dict[str, Any] | None = None


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    retry_after: int | None
    code: str
    message: str


@dataclass
class _FailureRule:
    kind: str
    name: re.Pattern[str]
    code: str
    message: str
    remaining: int | None = None  # None: every matching operation


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered, for assertions."""

    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    status: int


@dataclass
class ArmServer:
    """Microsoft.Compute disks and snapshots as Azure Resource Manager serves them, on https://127.0.0.1.

    Knobs a test may set at any time: `latency` (seconds an operation stays InProgress), `put_status`
    (200 or 202 for an accepted PUT/PATCH), `delete_status` (200, 202 or 204 for a DELETE of an existing
    resource), `delete_missing_status` (204 as ARM does, or 404), `page_size` of lists and
    `status_retry_after` (a Retry-After on InProgress answers, which the SDK honours between polls).
    """

    subscription_id: str = "00000000-0000-0000-0000-00000000c0de"
    token: str | None = "arm-test-token"
    latency: float = 0.0
    put_status: int = 202
    delete_status: int = 202
    delete_missing_status: int = 204
    page_size: int = 2
    status_retry_after: int | None = None
    requests: list[RequestRecord] = field(default_factory=list)
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._groups: set[str] = set()
        self._resources: dict[tuple[str, str, str, str], _Resource] = {}
        self._operations: dict[str, _Operation] = {}
        self._faults: list[_Fault] = []
        self._failures: list[_FailureRule] = []
        self._seq = 0
        self._httpd: _QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="arm-server-")
        self.ca_path = Path(self._tmp.name) / "ca.pem"
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ArmServer:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        server = self

        class Handler(_Handler):
            arm = server

        httpd = _QuietServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        # The handshake happens in the handler's thread, so one slow client cannot stall the accept loop.
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self.url = f"https://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="arm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self._tmp.cleanup()

    def __enter__(self) -> ArmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test side channel (plain methods, not HTTP routes) -------------------------------------

    def add_resource_group(self, name: str) -> None:
        with self._lock:
            self._groups.add(name.lower())

    def inject_fault(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        count: int = 1,
        retry_after: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """The next `count` requests of `method` whose path matches `path_pattern` answer `status`."""
        default_code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
        with self._lock:
            self._faults.append(
                _Fault(
                    method=method.upper(),
                    path=re.compile(path_pattern, re.IGNORECASE),
                    status=status,
                    remaining=count,
                    retry_after=retry_after,
                    code=code or default_code.get(status, f"Http{status}"),
                    message=message or f"Injected fault: HTTP {status}.",
                )
            )

    def fail_operations(
        self, kind: str, name_pattern: str, code: str, message: str, *, count: int | None = None
    ) -> None:
        """Operations creating `kind` resources whose name matches end Failed with this error.

        With `count`, only the next `count` such operations do.
        """
        with self._lock:
            self._failures.append(_FailureRule(kind, re.compile(name_pattern), code, message, count))

    def write_disk(self, resource_id: str, data: bytes, offset: int = 0) -> None:
        """Write bytes into a disk's modeled content, as a VM would."""
        with self._lock:
            self._settle()
            if self._by_id(resource_id).kind != "disks":
                raise ValueError(f"{resource_id} is not a disk")
            self.tamper(resource_id, data, offset)

    def tamper(self, resource_id: str, data: bytes, offset: int = 0) -> None:
        """Write bytes into any resource's content, snapshots too (what no Azure API allows: bit rot)."""
        with self._lock:
            resource = self._by_id(resource_id)
            size = int(resource.properties["diskSizeGB"]) * GIB
            if offset < 0 or offset + len(data) > size:
                raise ValueError(f"a write of {len(data)} bytes at {offset} is outside {resource_id}")
            position = offset
            while position < offset + len(data):
                index, start = divmod(position, PAGE_SIZE)
                take = min(PAGE_SIZE - start, offset + len(data) - position)
                page = bytearray(resource.pages.get(index, bytes(PAGE_SIZE)))
                page[start : start + take] = data[position - offset : position - offset + take]
                resource.pages[index] = bytes(page)
                position += take

    def pages(self, resource_id: str) -> dict[int, bytes]:
        """A disk's or snapshot's written pages (index -> PAGE_SIZE bytes); every other byte is zero."""
        with self._lock:
            self._settle()
            return dict(self._by_id(resource_id).pages)

    def size_bytes(self, resource_id: str) -> int:
        with self._lock:
            self._settle()
            return int(self._by_id(resource_id).properties["diskSizeGB"]) * GIB

    def fingerprint(self, resource_id: str) -> str:
        """SHA-256 of a resource's data, whatever its size: equal for a disk and a larger copy of it."""
        digest = hashlib.sha256()
        for index, page in sorted(self.pages(resource_id).items()):
            if page.strip(b"\0"):
                digest.update(index.to_bytes(8, "big") + page)
        return digest.hexdigest()

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        """The resource as GET would answer it, or None."""
        with self._lock:
            self._settle()
            try:
                return self._by_id(resource_id).body()
            except KeyError:
                return None

    def names(self, kind: str) -> list[str]:
        with self._lock:
            self._settle()
            return sorted(r.name for r in self._resources.values() if r.kind == kind)

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        """Every resource of `kind` (all resource groups) as GET would answer it, oldest first."""
        with self._lock:
            self._settle()
            return [r.body() for r in sorted(self._resources.values(), key=lambda r: r.seq) if r.kind == kind]

    def remove(self, resource_id: str) -> None:
        """Delete a resource at once, as someone in the Azure portal would behind our back."""
        with self._lock:
            self._settle()
            match = _RESOURCE_ID.match(resource_id)
            if match:
                key = self._key(match["sub"], match["group"], match["kind"], match["name"])
                self._resources.pop(key, None)

    def put_disk(
        self, group: str, name: str, location: str, size_gb: int, tags: dict[str, str] | None = None
    ) -> str:
        """Create a ready disk directly (as if made outside this system); return its id."""
        with self._lock:
            self._seq += 1
            resource = _Resource(
                kind="disks",
                subscription=self.subscription_id,
                group=group,
                name=name,
                location=location,
                tags=dict(tags or {}),
                sku={"name": "Premium_LRS", "tier": "Premium"},
                properties=self._disk_properties({"createOption": "Empty"}, size_gb),
                state="Succeeded",
                seq=self._seq,
            )
            self._resources[self._key(self.subscription_id, group, "disks", name)] = resource
            return resource.id

    def put_snapshot(
        self,
        group: str,
        name: str,
        location: str,
        size_gb: int,
        tags: dict[str, str] | None = None,
        state: str = "Succeeded",
    ) -> str:
        """Place a snapshot directly, in any provisioningState (as a crash or another tool left it)."""
        with self._lock:
            self._seq += 1
            properties = self._disk_properties({"createOption": "Copy", "sourceResourceId": ""}, size_gb)
            resource = _Resource(
                kind="snapshots",
                subscription=self.subscription_id,
                group=group,
                name=name,
                location=location,
                tags=dict(tags or {}),
                sku={"name": "Standard_LRS"},
                properties={**properties, "incremental": False},
                state=state,
                seq=self._seq,
            )
            self._resources[self._key(self.subscription_id, group, "snapshots", name)] = resource
            return resource.id

    def requests_matching(self, method: str, path_pattern: str, since: int = 0) -> list[RequestRecord]:
        """The requests of `method` whose path matches, from the `since`-th request on."""
        pattern = re.compile(path_pattern, re.IGNORECASE)
        with self._lock:
            return [r for r in self.requests[since:] if r.method == method.upper() and pattern.search(r.path)]

    # -- the model --------------------------------------------------------------------------------

    @staticmethod
    def _key(sub: str, group: str, kind: str, name: str) -> tuple[str, str, str, str]:
        return (sub.lower(), group.lower(), kind.lower(), name.lower())

    def _by_id(self, resource_id: str) -> _Resource:
        match = _RESOURCE_ID.match(resource_id)
        if not match:
            raise KeyError(resource_id)
        return self._resources[self._key(match["sub"], match["group"], match["kind"], match["name"])]

    def _settle(self) -> None:
        """Finish every operation whose time has come (operations end by time, as in Azure)."""
        now = time.monotonic()
        for op in self._operations.values():
            if op.done or op.due > now:
                continue
            op.done = True
            op.ended_iso = _now_iso()
            resource = self._resources.get(op.key)
            if op.kind == "delete":
                self._resources.pop(op.key, None)
            elif resource is not None:
                resource.state = "Failed" if op.error else "Succeeded"
                op.output = resource.body()

    def _start_operation(self, kind: str, resource: _Resource, error: dict[str, str] | None) -> _Operation:
        now = time.monotonic()
        op = _Operation(
            id=str(uuid.uuid4()),
            kind=kind,
            key=self._key(resource.subscription, resource.group, resource.kind, resource.name),
            location=_norm_location(resource.location),
            started=now,
            due=now + self.latency,
            started_iso=_now_iso(),
            error=error,
        )
        self._operations[op.id] = op
        # Intervals overlap most at some operation's start, so counting here finds the true maximum.
        in_flight = sum(1 for o in self._operations.values() if o.started <= now < o.due)
        self.max_in_flight = max(self.max_in_flight, in_flight)
        return op

    def _failure_for(self, kind: str, name: str) -> dict[str, str] | None:
        for rule in self._failures:
            if rule.kind == kind and rule.name.search(name) and rule.remaining != 0:
                if rule.remaining is not None:
                    rule.remaining -= 1
                return {"code": rule.code, "message": rule.message}
        return None

    @staticmethod
    def _disk_properties(creation: dict[str, Any], size_gb: int) -> dict[str, Any]:
        return {
            "creationData": creation,
            "diskSizeGB": size_gb,
            "diskSizeBytes": size_gb * GIB,
            "diskState": "Unattached",
            "timeCreated": _now_iso(),
            "uniqueId": str(uuid.uuid4()),
        }

    def _source(self, creation: dict[str, Any]) -> _Resource:
        source_id = creation.get("sourceResourceId")
        if not isinstance(source_id, str) or not source_id:
            raise _ArmError(
                400, "InvalidParameter", "Required parameter 'sourceResourceId' is missing (null)."
            )
        try:
            source = self._by_id(source_id)
        except KeyError:
            raise _ArmError(
                404, "ResourceNotFound", f"The source resource '{source_id}' was not found."
            ) from None
        if source.state != "Succeeded":
            raise _ArmError(
                409,
                "OperationNotAllowed",
                f"The source resource '{source_id}' is not ready ({source.state}).",
            )
        return source

    # -- request handling -------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        with self._lock:
            try:
                status, out_headers, payload = self._dispatch(method, path, query, headers, body)
            except _ArmError as err:
                status, out_headers = err.status, err.headers
                payload = {"error": {"code": err.code, "message": err.message}}
            self.requests.append(RequestRecord(time.monotonic(), method, path, query, status))
            return status, out_headers, payload

    def _dispatch(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        for fault in self._faults:
            if fault.remaining > 0 and fault.method == method and fault.path.search(path):
                fault.remaining -= 1
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                raise _ArmError(fault.status, fault.code, fault.message, extra)
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            raise _ArmError(401, "InvalidAuthenticationToken", "The access token is invalid or missing.")
        api_version = (query.get("api-version") or [""])[0]
        if not api_version:
            raise _ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required.",
            )
        self._settle()
        if match := _OPERATION_PATH.match(path):
            self._check_subscription(match["sub"])
            return self._operation_status(match["op"], query)
        match = _RESOURCE_PATH.match(path)
        if not match:
            raise _ArmError(404, "InvalidResourceType", f"No route for {method} {path}.")
        self._check_subscription(match["sub"])
        if match["group"].lower() not in self._groups:
            raise _ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{match['group']}' could not be found."
            )
        kind, name = match["kind"].lower(), match["name"]
        if name is None:
            if method != "GET":
                raise _ArmError(405, "MethodNotAllowed", f"{method} is not allowed on a collection.")
            return self._list(match["sub"], match["group"], kind, query, api_version)
        key = self._key(match["sub"], match["group"], kind, name)
        if method == "GET":
            return 200, {}, self._get(key, kind, name, match["group"]).body()
        if method == "PUT":
            return self._put(match["sub"], match["group"], kind, name, _json(body), api_version)
        if method == "PATCH":
            return self._patch(key, kind, name, match["group"], _json(body), api_version)
        if method == "DELETE":
            return self._delete(key, api_version)
        raise _ArmError(405, "MethodNotAllowed", f"{method} is not allowed.")

    def _check_subscription(self, sub: str) -> None:
        if sub.lower() != self.subscription_id.lower():
            raise _ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")

    def _get(self, key: tuple[str, str, str, str], kind: str, name: str, group: str) -> _Resource:
        resource = self._resources.get(key)
        if resource is None:
            raise _ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Compute/{kind}/{name}' under resource group '{group}'"
                " was not found.",
            )
        return resource

    def _list(
        self, sub: str, group: str, kind: str, query: dict[str, list[str]], api_version: str
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        items = sorted(
            (r for r in self._resources.values() if r.kind == kind and r.group.lower() == group.lower()),
            key=lambda r: r.seq,
        )
        start = int((query.get("$skiptoken") or ["0"])[0])
        page = items[start : start + self.page_size]
        payload: dict[str, Any] = {"value": [r.body() for r in page]}
        if start + self.page_size < len(items):
            payload["nextLink"] = (
                f"{self.url}/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/{kind}"
                f"?api-version={quote(api_version)}&$skiptoken={start + self.page_size}"
            )
        return 200, {}, payload

    def _put(
        self, sub: str, group: str, kind: str, name: str, body: dict[str, Any], api_version: str
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if not _NAME.match(name):
            raise _ArmError(
                400,
                "InvalidParameter",
                f"The name '{name}' is invalid: use 1 to 80 of the characters a-z, A-Z, 0-9, _ and -.",
            )
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise _ArmError(400, "LocationRequired", "The location property is required for this definition.")
        properties = body.get("properties") or {}
        creation = properties.get("creationData") or {}
        tags = body.get("tags") or {}
        key = self._key(sub, group, kind, name)
        existing = self._resources.get(key)
        if existing is not None:
            return self._update_by_put(existing, location, creation, tags, properties, api_version)
        option = creation.get("createOption")
        if kind == "disks" and option == "Empty":
            size = properties.get("diskSizeGB")
            if not isinstance(size, int) or size <= 0:
                raise _ArmError(
                    400, "InvalidParameter", "diskSizeGB must be a positive integer for an empty disk."
                )
            pages: dict[int, bytes] = {}
        elif option == "Copy":
            source = self._source(creation)
            if _norm_location(source.location) != _norm_location(location):
                raise _ArmError(
                    400,
                    "BadRequest",
                    f"The source '{source.id}' is in location '{source.location}'; a copy must be created"
                    f" in the same location, not in '{location}'.",
                )
            source_size = int(source.properties["diskSizeGB"])
            size = properties.get("diskSizeGB", source_size) if kind == "disks" else source_size
            if not isinstance(size, int) or size < source_size:
                raise _ArmError(
                    400,
                    "BadRequest",
                    f"diskSizeGB {size} is smaller than the source's size of {source_size} GB.",
                )
            pages = dict(source.pages)  # a copy at this moment: later writes to the source are not in it
        else:
            raise _ArmError(400, "InvalidParameter", f"createOption '{option}' is not supported here.")
        self._seq += 1
        stored = self._disk_properties(dict(creation), size)
        if kind == "snapshots":
            stored["incremental"] = bool(properties.get("incremental", False))
        resource = _Resource(
            kind=kind,
            subscription=sub,
            group=group,
            name=name,
            location=location,
            tags=dict(tags),
            sku=body.get("sku") or {"name": "Standard_LRS"},
            properties=stored,
            pages=pages,
            state="Creating",
            seq=self._seq,
        )
        self._resources[key] = resource
        op = self._start_operation("create", resource, self._failure_for(kind, name))
        return self._accepted(op, resource, api_version, self.put_status)

    def _update_by_put(
        self,
        existing: _Resource,
        location: str,
        creation: dict[str, Any],
        tags: dict[str, str],
        properties: dict[str, Any],
        api_version: str,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if _norm_location(existing.location) != _norm_location(location):
            raise _ArmError(
                409,
                "InvalidResourceLocation",
                f"The resource '{existing.name}' already exists in another location.",
            )
        stored = existing.properties["creationData"]
        for prop in ("createOption", "sourceResourceId"):
            if creation.get(prop) != stored.get(prop):
                raise _ArmError(
                    409, "PropertyChangeNotAllowed", f"Changing property '{prop}' is not allowed."
                )
        self._check_idle(existing)
        existing.tags = dict(tags)
        self._resize(existing, properties.get("diskSizeGB"))
        existing.state = "Updating"
        op = self._start_operation("update", existing, None)
        return self._accepted(op, existing, api_version, self.put_status)

    def _patch(
        self,
        key: tuple[str, str, str, str],
        kind: str,
        name: str,
        group: str,
        body: dict[str, Any],
        api_version: str,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        resource = self._get(key, kind, name, group)
        self._check_idle(resource)
        if "tags" in body:
            resource.tags = dict(body["tags"] or {})
        self._resize(resource, (body.get("properties") or {}).get("diskSizeGB"))
        resource.state = "Updating"
        op = self._start_operation("update", resource, None)
        return self._accepted(op, resource, api_version, self.put_status)

    def _check_idle(self, resource: _Resource) -> None:
        if resource.state not in ("Succeeded", "Failed"):
            raise _ArmError(
                409,
                "OperationNotAllowed",
                f"'{resource.name}' is busy with another operation ({resource.state}).",
            )

    @staticmethod
    def _resize(resource: _Resource, size: object) -> None:
        if size is None:
            return
        current = int(resource.properties["diskSizeGB"])
        if not isinstance(size, int) or size < current:
            raise _ArmError(
                400, "BadRequest", f"Disk size can only grow: {current} GB to {size} GB is refused."
            )
        resource.properties["diskSizeGB"] = size
        resource.properties["diskSizeBytes"] = size * GIB

    def _delete(self, key: tuple[str, str, str, str], api_version: str) -> tuple[int, dict[str, str], None]:
        resource = self._resources.get(key)
        if resource is None:
            if self.delete_missing_status == 404:
                raise _ArmError(404, "ResourceNotFound", f"The Resource '{key[3]}' was not found.")
            return 204, {}, None
        if resource.state == "Deleting":
            return 202, self._operation_headers(self._pending_op(key), api_version), None
        if self.delete_status != 202:
            del self._resources[key]
            return self.delete_status, {}, None
        resource.state = "Deleting"
        op = self._start_operation("delete", resource, None)
        return 202, self._operation_headers(op, api_version), None

    def _pending_op(self, key: tuple[str, str, str, str]) -> _Operation:
        return next(o for o in self._operations.values() if o.key == key and not o.done)

    def _accepted(
        self, op: _Operation, resource: _Resource, api_version: str, status: int
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = self._operation_headers(op, api_version)
        if self.status_retry_after is not None:
            headers["Retry-After"] = str(self.status_retry_after)
        if op.due <= time.monotonic():
            self._settle()
        return status, headers, resource.body()

    def _operation_headers(self, op: _Operation, api_version: str) -> dict[str, str]:
        base = (
            f"{self.url}/subscriptions/{self.subscription_id}/providers/Microsoft.Compute"
            f"/locations/{op.location}/DiskOperations/{op.id}?p={op.id[:8]}&api-version={quote(api_version)}"
        )
        return {"Azure-AsyncOperation": base, "Location": base + "&monitor=true"}

    def _operation_status(
        self, op_id: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        op = self._operations.get(op_id)
        if op is None:
            raise _ArmError(404, "ResourceNotFound", f"The operation '{op_id}' was not found.")
        retry = {"Retry-After": str(self.status_retry_after)} if self.status_retry_after is not None else {}
        if (query.get("monitor") or [""])[0] == "true":
            # The Location flavour: 202 while running, then the operation's own final answer.
            if not op.done:
                return 202, retry, None
            if op.error:
                raise _ArmError(400, op.error["code"], op.error["message"])
            return (200, {}, op.output) if op.output is not None else (204, {}, None)
        status: dict[str, Any] = {"name": op.id, "startTime": op.started_iso}
        if not op.done:
            return 200, retry, {**status, "status": "InProgress"}
        status["endTime"] = op.ended_iso
        if op.error:
            return 200, {}, {**status, "status": "Failed", "error": dict(op.error)}
        if op.output is not None:
            status["properties"] = {"output": op.output}
        return 200, {}, {**status, "status": "Succeeded"}


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise _ArmError(400, "InvalidRequestContent", "The request content is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise _ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return parsed


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that refuse the certificate or hang up are part of the tests, not server failures.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One buffered write per answer and no Nagle delay: otherwise each request costs ~40 ms of delayed ACKs.
    wbufsize = -1
    disable_nagle_algorithm = True
    arm: ArmServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = self.arm.handle(
            self.command, split.path, parse_qs(split.query), headers, body
        )
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in out_headers.items():
            self.send_header(name, value)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass
