"""The plugin's server: go-plugin's handshake, then gRPC over TLS and HTTP/2 (h2) on one unix socket."""

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

    The handshake is printed as soon as the socket listens; what serving needs (ssl, h2, the protocol
    stubs) is imported while Terraform connects, and a connection waits in the listen queue meanwhile.
    As go-plugin servers do, TLS is used when Terraform asks for it (PLUGIN_CLIENT_CERT is set, the
    default) and plain HTTP/2 when it does not (TF_DISABLE_PLUGIN_TLS). While no connection has come,
    `orphaned` is asked twice a second whether Terraform has gone: then the plugin leaves, as it does
    when Terraform's connection closes.
    """
    import contextlib
    import threading

    from provider import tls

    global listening
    out = out or sys.stdout
    secure = bool(os.environ.get("PLUGIN_CLIENT_CERT"))
    pem_path, der_b64 = tls.certificate() if secure else ("", None)
    sock, path = listen()
    listening = path
    try:
        out.write(handshake_line(path, der_b64))
        out.flush()
        context = _tls_context(pem_path) if secure else None
        handlers = load_handlers()
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


class _Connection:
    """One HTTP/2 connection: the I/O thread owns the h2 state machine; calls run on their own threads."""

    def __init__(self, sock, handlers: HandlerTable, stopped: threading.Event) -> None:
        import threading

        import h2.config
        import h2.connection

        self.sock = sock
        self.handlers = handlers
        self.stopped = stopped
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.bodies: dict[int, bytearray] = {}
        self.paths: dict[int, str] = {}
        # Finished calls wait here for the I/O thread: (stream id, grpc status, message, body).
        self.outbox: list[tuple[int, int, str, bytes]] = []
        self.pending: dict[int, tuple[memoryview, int, str]] = {}
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = os.pipe()
        self.shutting_down = False

    def run(self) -> None:
        import contextlib
        import select

        import h2.events as ev

        self.sock.setblocking(False)
        self.h2.initiate_connection()
        # Terraform's requests carry whole configurations and states: open a large receive window.
        self.h2.increment_flow_control_window(1 << 24)
        self._flush()
        try:
            while True:
                if not getattr(self.sock, "pending", lambda: 0)():
                    readable, _, _ = select.select([self.sock, self.wake_r], [], [])
                    if self.wake_r in readable:
                        os.read(self.wake_r, 4096)
                        self._drain_outbox()
                        self._flush()
                        if self.shutting_down and not self.pending:
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
                for event in self.h2.receive_data(data):
                    if isinstance(event, ev.RequestReceived):
                        headers = dict(event.headers)
                        self.paths[event.stream_id] = headers.get(b":path", b"").decode()
                        self.bodies[event.stream_id] = bytearray()
                    elif isinstance(event, ev.DataReceived):
                        self.bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                        self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, ev.StreamEnded):
                        self._dispatch(event.stream_id)
                    elif isinstance(event, ev.StreamReset):
                        self.bodies.pop(event.stream_id, None)
                        self.pending.pop(event.stream_id, None)
                    elif isinstance(event, ev.WindowUpdated):
                        self._send_pending()
                    elif isinstance(event, ev.ConnectionTerminated):
                        return
                self._flush()
        except OSError:
            return
        finally:
            os.close(self.wake_r)
            os.close(self.wake_w)
            with contextlib.suppress(OSError):
                self.sock.close()

    def _dispatch(self, stream_id: int) -> None:
        import threading

        path = self.paths.pop(stream_id, "")
        body = bytes(self.bodies.pop(stream_id, b""))
        if path == STDIO:
            # go-plugin asks to mirror our stdout/stderr; we write nothing there after the handshake.
            self._finish(stream_id, 0, "", None)
            return
        handler = self.handlers.get(path)
        if handler is None:
            self._finish(stream_id, UNIMPLEMENTED, f"method {path} is not implemented", None)
            return
        threading.Thread(target=self._call, args=(stream_id, path, handler, body), daemon=True).start()

    def _call(self, stream_id: int, path: str, handler: Handler, body: bytes) -> None:
        # gRPC frames each message with a compressed flag and a 4-byte length; unary calls carry one.
        message = body[5 : 5 + int.from_bytes(body[1:5], "big")] if len(body) >= 5 else b""
        try:
            response = handler(message)
        except Exception as exc:  # a bug in a handler must answer the call, not hang Terraform
            import traceback

            traceback.print_exc(file=sys.stderr)
            self._post(stream_id, INTERNAL, f"{type(exc).__name__}: {exc}", None)
            return
        self._post(stream_id, 0, "", response)
        if path == SHUTDOWN:
            with self.lock:
                self.shutting_down = True
            os.write(self.wake_w, b"x")

    def _post(self, stream_id: int, status: int, message: str, response: bytes | None) -> None:
        with self.lock:
            self.outbox.append((stream_id, status, message, response))
        os.write(self.wake_w, b"x")

    def _drain_outbox(self) -> None:
        with self.lock:
            finished, self.outbox = self.outbox, []
        for stream_id, status, message, response in finished:
            self._finish(stream_id, status, message, response)

    def _finish(self, stream_id: int, status: int, message: str, response: bytes | None) -> None:
        if response is None:
            # A trailers-only response: the status travels in the one HEADERS frame.
            headers = [
                (b":status", b"200"),
                (b"content-type", b"application/grpc"),
                *_status(status, message),
            ]
            self.h2.send_headers(stream_id, headers, end_stream=True)
            return
        self.h2.send_headers(stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
        framed = b"\x00" + len(response).to_bytes(4, "big") + response
        self.pending[stream_id] = (memoryview(framed), status, message)
        self._send_pending()

    def _send_pending(self) -> None:
        """Send what the peer's flow-control windows allow; the rest waits for its WINDOW_UPDATE."""
        for stream_id in list(self.pending):
            data, status, message = self.pending[stream_id]
            while data:
                window = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk, data = data[:window], data[window:]
                self.h2.send_data(stream_id, chunk.tobytes())
            if data:
                self.pending[stream_id] = (data, status, message)
                continue
            del self.pending[stream_id]
            self.h2.send_headers(stream_id, _status(status, message), end_stream=True)

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.setblocking(True)
            self.sock.sendall(data)
            self.sock.setblocking(False)


def _status(code: int, message: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"grpc-status", str(code).encode())]
    if message:
        from urllib.parse import quote

        headers.append((b"grpc-message", quote(message, safe=" ").encode()))
    return headers
