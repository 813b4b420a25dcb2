"""The plugin's server: go-plugin's handshake, then gRPC over TLS and HTTP/2 on a unix socket.

Long because the launcher imports only this module (and os, sys) on every start, so the
handshake, the socket loop and the gRPC framing stay together rather than cost an import each.
"""

from __future__ import annotations

import os
import sys

# typing itself takes longer to import than the launcher's whole work: the constant is spelled out.
TYPE_CHECKING = False

# Only os and sys at the top: the launcher imports this module on every start, warm or cold.
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Protocol

    # A handler takes a request message's bytes and returns the response message's bytes.
    Handler = Callable[[bytes], bytes]

    class HandlerTable(Protocol):
        """The handlers by gRPC path: a dict, or a table that loads them on first use."""

        def get(self, path: str, /) -> Handler | None: ...


MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
CORE_PROTOCOL = 1
APP_PROTOCOL = 6

SHUTDOWN = "/plugin.GRPCController/Shutdown"
# Calls that only compute (no request to the shim): answered on the I/O thread, in order, without the
# worker hand-over, which costs more than they do. Terraform sends hundreds of them in a large plan.
INLINE = frozenset(
    "/tfplugin6.Provider/" + name
    for name in (
        "GetProviderSchema",
        "GetMetadata",
        "ValidateResourceConfig",
        "ValidateDataResourceConfig",
        "UpgradeResourceState",
        "GetFunctions",
    )
)
STDIO = "/plugin.GRPCStdio/StreamStdio"
UNIMPLEMENTED = 12
INTERNAL = 13

NOT_A_PLUGIN = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)


# How often a plugin waiting for Terraform's connection checks that Terraform is still there.
WATCH_SECONDS = 0.5
# The socket this process listens on, so that an abrupt exit can still remove it.
listening: str | None = None


def launched_by_terraform() -> bool:
    """go-plugin sets its magic cookie; without it a person started the binary by hand."""
    return os.environ.get(MAGIC_COOKIE_KEY) == MAGIC_COOKIE_VALUE


def parent_gone() -> Callable[[], bool]:
    """A check that turns true once the process that started this one (Terraform) has gone."""
    parent = os.getppid()
    return lambda: os.getppid() != parent


def remove_socket() -> None:
    """Remove the listening socket now, for an exit that skips serve's own cleanup."""
    import contextlib

    if listening:
        with contextlib.suppress(OSError):
            os.unlink(listening)


def listen() -> tuple[object, str]:
    """A listening unix socket in a fresh private path: (socket, path)."""
    import socket

    directory = os.environ.get("TMPDIR") or "/tmp"
    path = os.path.join(directory, f"cloudbackup-plugin-{os.getpid()}-{os.urandom(6).hex()}.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(8)
    return sock, path


def handshake_line(path: str, der_b64: str | None) -> str:
    """What go-plugin reads on stdout: core protocol|app protocol|network|address|protocol[|server cert]."""
    line = f"{CORE_PROTOCOL}|{APP_PROTOCOL}|unix|{path}|grpc"
    return f"{line}|{der_b64}\n" if der_b64 else f"{line}\n"


def serve(
    load_handlers: Callable[[], HandlerTable],
    out=None,
    orphaned: Callable[[], bool] | None = None,
) -> None:
    """Announce the socket, then serve Terraform's connection until it shuts the plugin down.

    The handshake is printed as soon as the socket listens; what serving needs (ssl, hpack, the protocol
    stubs) is imported while Terraform connects, and a connection waits in the listen queue meanwhile.
    As go-plugin servers do, TLS is used when Terraform asks for it (PLUGIN_CLIENT_CERT is set, the
    default) and plain HTTP/2 when it does not (TF_DISABLE_PLUGIN_TLS). While no connection has come,
    `orphaned` is asked twice a second whether Terraform has gone: then the plugin leaves, as it does
    when Terraform's connection closes.
    """
    import contextlib
    import threading

    from provider.runtime import tls

    global listening
    out = out or sys.stdout
    secure = bool(os.environ.get("PLUGIN_CLIENT_CERT"))
    pem_path, der_b64 = tls.certificate() if secure else ("", None)
    sock, path = listen()
    listening = path
    try:
        try:
            out.write(handshake_line(path, der_b64))
            out.flush()
        except OSError:  # Terraform went away before reading the handshake: nothing to serve
            return
        context = _tls_context(pem_path) if secure else None
        handlers = load_handlers()
        _warm_up(sock, handlers)
        stopped = threading.Event()
        if orphaned is not None:
            sock.settimeout(WATCH_SECONDS)
        while not stopped.is_set():
            try:
                raw, _ = sock.accept()
            except TimeoutError:
                if orphaned is not None and orphaned():
                    return
                continue
            raw.settimeout(None)
            try:
                conn = context.wrap_socket(raw, server_side=True) if context is not None else raw
            except OSError:
                raw.close()
                continue
            # go-plugin opens one connection and keeps it: when it closes, Terraform is done with us.
            _Connection(conn, handlers, stopped).run()
            stopped.set()
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        listening = None


class _DebugLog:
    """One JSON line per call on stderr, in hclog's format, which go-plugin relays to Terraform's log.

    It says which method was served, its gRPC status and how long it took: never a request's content,
    so no configuration value, key or header reaches the log.
    """

    def __init__(self) -> None:
        import json
        import time

        self.now = time.perf_counter
        self._dumps = json.dumps

    def served(self, path: str, status: int, started: float | None) -> None:
        import datetime

        method = path.rsplit("/", 1)[-1]
        entry: dict[str, object] = {
            "@level": "debug",
            "@message": f"served {method}" if status == 0 else f"answered {method} with gRPC status {status}",
            "@module": "cloudbackup",
            "@timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "tf_rpc": method,
            "grpc_status": status,
        }
        if started is not None:
            entry["duration_ms"] = round((self.now() - started) * 1000, 3)
        # One write of a whole line: lines from concurrent calls never interleave (a pipe writes up to
        # PIPE_BUF bytes at once).
        import contextlib

        with contextlib.suppress(OSError):  # Terraform closed our stderr: the line has no reader
            os.write(2, (self._dumps(entry) + "\n").encode())


def debug_log() -> _DebugLog | None:
    """The call log when Terraform's provider log level (TF_LOG_PROVIDER, else TF_LOG) shows debug lines."""
    level = (os.environ.get("TF_LOG_PROVIDER") or os.environ.get("TF_LOG") or "").strip().upper()
    # As Terraform reads it: JSON and any value it does not know mean TRACE.
    if level in ("", "OFF", "ERROR", "WARN", "INFO"):
        return None
    return _DebugLog()


def _warm_up(sock, handlers: HandlerTable) -> None:
    """Run the table's warm-up steps until Terraform's connection is waiting (it is then served first)."""
    import contextlib
    import select

    if os.environ.get("CLOUDBACKUP_PLUGIN_WARM_UP") == "0":
        return
    for step in getattr(handlers, "warm_steps", list)():
        if select.select([sock], [], [], 0)[0]:
            return
        with contextlib.suppress(Exception):  # a failed import is reported by the call that needs it
            step()


def _tls_context(pem_path: str):
    """TLS 1.2+ with ALPN h2, authenticated by the server certificate announced in the handshake.

    Terraform's client certificate is not requested: asking for it makes Terraform sign with its P-521
    key on every start (10-20 ms in go1.16), and the socket is already reachable by this user alone
    (0600 in a fresh path). Set CLOUDBACKUP_PLUGIN_VERIFY_CLIENT=1 to require and verify it.
    """
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pem_path)
    context.set_alpn_protocols(["h2"])
    if os.environ.get("CLOUDBACKUP_PLUGIN_VERIFY_CLIENT") == "1":
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=os.environ["PLUGIN_CLIENT_CERT"])
    return context


class _Workers:
    """Threads that run calls: one kept from an earlier call when it is free, else a new one."""

    def __init__(self) -> None:
        import queue
        import threading

        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.idle = 0
        self.started = 0
        self.lock = threading.Lock()

    def submit(self, call: Callable[..., None], *args: object) -> None:
        import threading

        with self.lock:
            reuse = self.idle > 0
            if reuse:
                self.idle -= 1
            else:
                self.started += 1
        self.jobs.put((call, args))
        if not reuse:
            threading.Thread(target=self._work, daemon=True).start()

    def close(self) -> None:
        """Let every worker leave once it has finished what it runs."""
        with self.lock:
            for _ in range(self.started):
                self.jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            call, args = job
            call(*args)
            with self.lock:
                self.idle += 1


class _Connection:
    """One HTTP/2 connection: the I/O thread owns the protocol state; calls run on worker threads."""

    def __init__(self, sock, handlers: HandlerTable, stopped: threading.Event) -> None:
        import threading

        from provider.runtime import http2

        self.sock = sock
        self.handlers = handlers
        self.stopped = stopped
        self.http2 = http2.ServerConnection()
        self.workers = _Workers()
        # Finished calls wait here for the I/O thread: (stream id, grpc status, message, body).
        self.outbox: list[tuple[int, int, str, bytes | None]] = []
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = os.pipe()
        self.shutting_down = False
        # Set, under the lock, when the connection is over: a call finishing later posts nothing, since
        # the wake-up pipe is closed (and its descriptor number may already belong to another file).
        self.closed = False
        self.log = debug_log()

    def run(self) -> None:
        import contextlib
        import select

        # Blocking throughout: a read follows select (or TLS data already buffered), and a record that
        # has begun to arrive is completed by the peer; switching modes around each write cost more.
        self.sock.setblocking(True)
        try:
            self._flush()
            while True:
                if not getattr(self.sock, "pending", lambda: 0)():
                    readable, _, _ = select.select([self.sock, self.wake_r], [], [])
                    if self.wake_r in readable:
                        os.read(self.wake_r, 4096)
                        self._drain_outbox()
                        self._flush()
                        if self.shutting_down and self.http2.idle:
                            return
                        if self.sock not in readable:
                            continue
                try:
                    data = self.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    # A TLS record without application data yet (ssl.SSLWantReadError): wait for more.
                    if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
                        continue
                    raise
                if not data:
                    return
                try:
                    requests, going_away = self.http2.receive(data)
                except Exception:  # a protocol error (or undecodable headers) ends the connection
                    return
                for stream_id, path, body in requests:
                    self._dispatch(stream_id, path, body)
                self._flush()
                if going_away:
                    return
        except OSError:
            return
        finally:
            with self.lock:
                self.closed = True
                os.close(self.wake_r)
                os.close(self.wake_w)
            self.workers.close()
            with contextlib.suppress(OSError):
                self.sock.close()

    def _dispatch(self, stream_id: int, path: str, body: bytes) -> None:
        if path == STDIO:
            # go-plugin asks to mirror our stdout/stderr; we write nothing there after the handshake.
            self.http2.respond_status(stream_id, 0, "")
            return
        handler = self.handlers.get(path)
        if handler is None:
            # Terraform takes UNIMPLEMENTED as "not offered" and falls back (GetMetadata, functions...).
            if self.log:
                self.log.served(path, UNIMPLEMENTED, None)
            self.http2.respond_status(stream_id, UNIMPLEMENTED, f"method {path} is not implemented")
            return
        if path in INLINE:
            self._call_inline(stream_id, path, handler, body)
            return
        self.workers.submit(self._call, stream_id, path, handler, body)

    def _call_inline(self, stream_id: int, path: str, handler: Handler, body: bytes) -> None:
        """Run a call that never waits on the network here, on the I/O thread: no hand-over, no wake-up."""
        message = body[5 : 5 + int.from_bytes(body[1:5], "big")] if len(body) >= 5 else b""
        started = self.log and self.log.now()
        try:
            response = handler(message)
        except Exception as exc:
            import traceback

            traceback.print_exc(file=sys.stderr)
            if self.log:
                self.log.served(path, INTERNAL, started)
            self.http2.respond_status(stream_id, INTERNAL, f"{type(exc).__name__}: {exc}")
            return
        if self.log:
            self.log.served(path, 0, started)
        self.http2.respond(stream_id, response)

    def _call(self, stream_id: int, path: str, handler: Handler, body: bytes) -> None:
        # gRPC frames each message with a compressed flag and a 4-byte length; unary calls carry one.
        message = body[5 : 5 + int.from_bytes(body[1:5], "big")] if len(body) >= 5 else b""
        started = self.log and self.log.now()
        try:
            response = handler(message)
        except Exception as exc:  # a bug in a handler must answer the call, not hang Terraform
            import traceback

            traceback.print_exc(file=sys.stderr)
            if self.log:
                self.log.served(path, INTERNAL, started)
            self._post(stream_id, INTERNAL, f"{type(exc).__name__}: {exc}", None)
            return
        if self.log:
            self.log.served(path, 0, started)
        self._post(stream_id, 0, "", response, shutdown=path == SHUTDOWN)

    def _post(
        self, stream_id: int, status: int, message: str, response: bytes | None, shutdown: bool = False
    ) -> None:
        with self.lock:
            if self.closed:
                return
            self.outbox.append((stream_id, status, message, response))
            self.shutting_down = self.shutting_down or shutdown
            os.write(self.wake_w, b"x")

    def _drain_outbox(self) -> None:
        with self.lock:
            finished, self.outbox = self.outbox, []
        for stream_id, status, message, response in finished:
            if response is None:
                self.http2.respond_status(stream_id, status, message)
            else:
                self.http2.respond(stream_id, response)

    def _flush(self) -> None:
        data = self.http2.data_to_send()
        if data:
            self.sock.sendall(data)
