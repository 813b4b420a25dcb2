"""The shim's HTTP API over HTTP Digest (http.client, kept-alive connections), with per-run read caches.

Long because Digest authentication, the kept-alive connection and the per-run read caches
share one lock and one connection; the resources see only its small set of calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from contract.errors import GONE_CODES
from contract.files import write_atomic

API_BASE = "/api/atlas/v1.0"
USER_AGENT = "terraform-provider-cloudbackup"
_PROJECT_PATH = re.compile(r"^/groups/([^/?]+)")
_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')
_HASHES: dict[str, Callable[..., Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class ApiError(Exception):
    """An error answer of the shim, in its one error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        method: str = "",
        path: str = "",
        parameters: list[str] | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(f"{method} {path}: HTTP {status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.method = method
        self.path = path
        self.parameters = parameters or []
        self.reason = reason

    @property
    def not_found(self) -> bool:
        """Whether the shim said that the resource asked for is gone (not that no route answered)."""
        return self.status == 404 and self.code in GONE_CODES


class KeyScopeError(Exception):
    """A project-scoped API key asked about another project: the answer would say "absent", wrongly."""

    def __init__(self, public_key: str, key_project: str, project_id: str) -> None:
        super().__init__(f"API key {public_key} reaches project {key_project} alone, not {project_id}")
        self.public_key = public_key
        self.key_project = key_project
        self.project_id = project_id


class Unreachable(Exception):
    """The shim could not be reached at all."""

    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _Challenge:
    realm: str
    nonce: str
    opaque: str | None
    algorithm: str
    qop: str | None
    count: int = 0


@dataclass
class _Flight:
    """One cached read: the first caller fetches it, concurrent callers wait for that answer."""

    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class Client:
    """One shim: Digest credentials, one kept-alive connection per thread, and read caches for this run."""

    def __init__(self, url: str, public_key: str, private_key: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.public_key = public_key
        self.private_key = private_key
        self.timeout = timeout
        # Idle kept-alive connections, shared by every thread: Terraform's calls each run on a thread of
        # their own, so connections kept per thread would be opened anew for nearly every request.
        self._idle: list[Any] = []
        self._challenge: _Challenge | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, ...], _Flight] = {}
        self._challenge = self._load_challenge()
        # The one project a project-scoped key reaches (from GET /self at configure); None: every project.
        self.key_project: str | None = None

    # transport

    def _connection(self, fresh: bool = False) -> tuple[Any, bool]:
        """(connection, whether it was kept alive from an earlier request): an idle one, else a new one."""
        import http.client

        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout), False
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout), False

    def _release(self, conn: Any) -> None:
        with self._lock:
            self._idle.append(conn)

    def _authorization(self, method: str, uri: str) -> str | None:
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            challenge.count += 1
            count = challenge.count
        hash_fn = _HASHES[challenge.algorithm]

        def h(text: str) -> str:
            return hash_fn(text.encode()).hexdigest()

        ha1 = h(f"{self.public_key}:{challenge.realm}:{self.private_key}")
        ha2 = h(f"{method}:{uri}")
        parts = [
            f"username={_quoted(self.public_key)}",
            f"realm={_quoted(challenge.realm)}",
            f"nonce={_quoted(challenge.nonce)}",
            f"uri={_quoted(uri)}",
            f"algorithm={challenge.algorithm}",
        ]
        if challenge.qop:
            cnonce = os.urandom(8).hex()
            nc = f"{count:08x}"
            response = h(f"{ha1}:{challenge.nonce}:{nc}:{cnonce}:auth:{ha2}")
            parts += ["qop=auth", f"nc={nc}", f"cnonce={_quoted(cnonce)}"]
        else:
            response = h(f"{ha1}:{challenge.nonce}:{ha2}")
        parts.append(f"response={_quoted(response)}")
        if challenge.opaque is not None:
            parts.append(f"opaque={_quoted(challenge.opaque)}")
        return "Digest " + ", ".join(parts)

    def _learn_challenge(self, headers: list[str]) -> bool:
        """Keep the strongest Digest challenge offered; False when there is none we can answer."""
        best: _Challenge | None = None
        for header in headers:
            scheme, _, rest = header.strip().partition(" ")
            if scheme.lower() != "digest":
                continue
            params = {k.lower(): (v[1:-1] if v.startswith('"') else v) for k, v in _PARAM.findall(rest)}
            algorithm = params.get("algorithm", "MD5").upper()
            if algorithm not in _HASHES or "nonce" not in params:
                continue
            qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
            if qops and "auth" not in qops:
                continue
            candidate = _Challenge(
                realm=params.get("realm", ""),
                nonce=params["nonce"],
                opaque=params.get("opaque"),
                algorithm=algorithm,
                qop="auth" if qops else None,
            )
            if best is None or candidate.algorithm == "SHA-256":
                best = candidate
        if best is None:
            return False
        with self._lock:
            self._challenge = best
        self._save_challenge(best)
        return True

    # The shim's nonces are signed timestamps valid for minutes: remembering the last challenge spares
    # each plugin process (three per plan) the 401 round trip that would fetch a new one.

    def _challenge_file(self) -> str:
        import zlib

        from provider.runtime import tls

        key = zlib.crc32(f"{self.url}|{self.public_key}".encode())
        return os.path.join(tls.cache_dir(), f"digest-{key:08x}")

    def _load_challenge(self) -> _Challenge | None:
        try:
            with open(self._challenge_file()) as saved:
                realm, nonce, opaque, algorithm, qop = saved.read().split("\n")[:5]
        except (OSError, ValueError):
            return None
        if algorithm not in _HASHES:
            return None
        # Other plugin processes answer the same saved nonce: the shim accepts each (nonce, nc) once, so
        # this process counts from a random point of the 32-bit nc space rather than from 1.
        start = int.from_bytes(os.urandom(4), "big") & 0x7FFF0000
        return _Challenge(realm, nonce, opaque or None, algorithm, qop or None, start)

    def _save_challenge(self, challenge: _Challenge) -> None:
        path = self._challenge_file()
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fields = (challenge.realm, challenge.nonce, challenge.opaque or "", challenge.algorithm)
            write_atomic(path, "\n".join((*fields, challenge.qop or "")).encode())
        except OSError:
            pass

    def _send(self, method: str, uri: str, payload: bytes | None) -> tuple[int, Any, list[str]]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        authorization = self._authorization(method, uri)
        if authorization:
            headers["Authorization"] = authorization
        conn, reused = self._connection()
        try:
            conn.request(method, uri, body=payload, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (ConnectionError, OSError) as exc:
            import http.client

            conn.close()
            # A kept-alive connection the server closed in the meantime: open a new one and send again.
            stale = isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
            if not (reused and stale):
                raise Unreachable(self.url, exc) from exc
            conn, _ = self._connection(fresh=True)
            try:
                conn.request(method, uri, body=payload, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (ConnectionError, OSError) as retry_exc:
                conn.close()
                raise Unreachable(self.url, retry_exc) from retry_exc
        if response.getheader("Connection", "").lower() == "close" or response.will_close:
            conn.close()
        else:
            self._release(conn)
        data: Any = None
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = {"detail": body.decode(errors="replace")[:500]}
        return response.status, data, response.headers.get_all("WWW-Authenticate") or []

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        raw_path: bool = False,
    ) -> Any:
        """Send one request and return its JSON answer; an error answer raises ApiError."""
        self.check_reach(path)
        uri = (path if raw_path else f"{self.prefix}{API_BASE}{path}") + (
            f"?{urlencode(query)}" if query else ""
        )
        payload = None if body is None else json.dumps(body).encode()
        status, data, challenges = self._send(method, uri, payload)
        if status == 401 and challenges and self._learn_challenge(challenges):
            status, data, challenges = self._send(method, uri, payload)
        if method != "GET":
            self.forget(path)
        if status >= 400:
            data = data if isinstance(data, dict) else {}
            raise ApiError(
                status,
                str(data.get("errorCode") or data.get("reason") or "HTTP_ERROR"),
                str(data.get("detail") or data.get("reason") or f"HTTP {status}"),
                method=method,
                path=uri,
                parameters=[p for p in data.get("parameters") or [] if isinstance(p, str)],
                reason=str(data.get("reason", "")),
            )
        return data

    def check_reach(self, path: str) -> None:
        """Refuse, before asking, a path of a project the key cannot reach: the shim would answer 404."""
        match = _PROJECT_PATH.match(path)
        if self.key_project is not None and match and match.group(1) != quote(self.key_project, safe=""):
            from urllib.parse import unquote

            raise KeyScopeError(self.public_key, self.key_project, unquote(match.group(1)))

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.request("POST", path, body if body is not None else {}, query=query or None)

    def put(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.request("PUT", path, body if body is not None else {}, query=query or None)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    # reads cached for the run: one list call per project and per cluster, dropped by any write below them

    def cached(self, key: tuple[str, ...], fetch: Callable[[], Any]) -> Any:
        with self._lock:
            flight = self._cache.get(key)
            owner = flight is None
            if owner:
                flight = self._cache[key] = _Flight()
        assert flight is not None
        if owner:
            try:
                flight.value = fetch()
            except BaseException as exc:
                flight.error = exc
                with self._lock:
                    if self._cache.get(key) is flight:
                        del self._cache[key]
            finally:
                flight.done.set()
        else:
            flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.value

    def forget(self, path: str) -> None:
        """Drop cached reads a write to `path` may have changed (its project's, or everything)."""
        match = re.match(r"/groups/([^/?]+)", path)
        with self._lock:
            if match is None:
                self._cache.clear()
                return
            project = match.group(1)
            for key in [k for k in self._cache if len(k) > 1 and k[1] == project]:
                del self._cache[key]

    def prefetch(self, *reads: Callable[[], Any]) -> None:
        """Start cached reads in the background, so that the calls Terraform makes next find them done."""

        def run(read: Callable[[], Any]) -> None:
            # A failed read is not cached: the caller that needs it reads again and reports the error.
            with contextlib.suppress(Exception):
                read()

        for read in reads:
            threading.Thread(target=run, args=(read,), daemon=True).start()

    def backup(self, project_id: str, cluster_name: str) -> dict[str, Any] | None:
        """The backup of a cluster, or None when the cluster does not exist.

        It comes embedded in the project's cluster list (one request for every cluster and backup of a
        project); a shim that does not embed backups is asked for this one.
        """
        try:
            cluster = self.cluster(project_id, cluster_name)
        except ApiError as error:
            if error.not_found:
                return None
            raise
        if cluster is None:
            return None
        embedded = cluster.get("backup")
        if isinstance(embedded, dict):
            return embedded

        def fetch() -> dict[str, Any] | None:
            try:
                return self.get(f"/groups/{seg(project_id)}/clusters/{seg(cluster_name)}/backup")
            except ApiError as error:
                if error.not_found:
                    return None
                raise

        return self.cached(("backup", project_id, cluster_name), fetch)

    def project(self, project_id: str) -> dict[str, Any]:
        return self.cached(("project", project_id), lambda: self.get(f"/groups/{seg(project_id)}"))

    def clusters(self, project_id: str) -> dict[str, dict[str, Any]]:
        """Every cluster of a project by name, each with its backup, from one list call per run."""

        def fetch() -> dict[str, dict[str, Any]]:
            path = f"/groups/{seg(project_id)}/clusters"
            return {c["name"]: c for c in list_all(self, path, includeBackup="true")}

        return self.cached(("clusters", project_id), fetch)

    def cluster(self, project_id: str, name: str) -> dict[str, Any] | None:
        return self.clusters(project_id).get(name)

    def snapshots(self, project_id: str, cluster_name: str) -> list[dict[str, Any]]:
        """Every stored snapshot of a cluster, newest first, from one list call per run."""
        path = f"/groups/{seg(project_id)}/clusters/{seg(cluster_name)}/backup/snapshots"
        return self.cached(("snapshots", project_id, cluster_name), lambda: list_all(self, path))


def seg(value: str) -> str:
    """One path segment, escaped."""
    return quote(str(value), safe="")


def list_all(client: Client, path: str, page_size: int = 500, **query: Any) -> list[dict[str, Any]]:
    """Every item of a list endpoint, following pages until totalCount is reached."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        data = client.get(path, itemsPerPage=page_size, pageNum=page, **query)
        results = data.get("results", []) if isinstance(data, dict) else []
        items.extend(results)
        total = data.get("totalCount", len(items)) if isinstance(data, dict) else len(items)
        if not results or len(items) >= total:
            return items
        page += 1
