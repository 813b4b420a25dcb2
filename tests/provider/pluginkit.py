"""A real plugin process and a gRPC client for it: TLS and HTTP/2 on its unix socket, as Terraform talks."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import h2.config
import h2.connection
import h2.events

from provider.runtime import server, tls

COOKIE = {server.MAGIC_COOKIE_KEY: server.MAGIC_COOKIE_VALUE}


def grpc(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


class Answer:
    """What came back on one stream: the gRPC status, its message and the response message's bytes."""

    def __init__(self, status: int, message: str, body: bytes) -> None:
        self.status = status
        self.message = message
        self.body = body


class PluginProcess:
    """`python -m provider.runtime.main` started as go-plugin starts a plugin, then connected to over TLS."""

    def __init__(self, cache: Path, **env: str) -> None:
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(cache),
            tls.CACHE_ENV: str(cache),
            "PLUGIN_CLIENT_CERT": "-",  # Terraform asks for TLS; the plugin does not check the value
            **COOKIE,
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "provider.runtime.main"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={k: v for k, v in environ.items() if v},
        )
        assert self.process.stdout is not None
        self.handshake = self.process.stdout.readline().decode().strip()
        assert self.handshake.startswith("1|6|unix|"), self.handshake
        self.sock: ssl.SSLSocket | None = None
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.bodies: dict[int, bytearray] = {}
        self.trailers: dict[int, dict[bytes, bytes]] = {}

    def connect(self) -> None:
        _, _, _, path, _, cert = self.handshake.split("|")
        der = base64.b64decode(cert + "=" * (-len(cert) % 4))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=der)
        context.set_alpn_protocols(["h2"])
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(path)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())

    def send(self, path: str, message: bytes = b"") -> int:
        """Start one unary call; its stream ID."""
        assert self.sock is not None
        stream = self.h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", path),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        self.h2.send_headers(stream, headers)
        self.h2.send_data(stream, grpc(message), end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        return stream

    def wait(self, stream: int) -> Answer:
        """Read until `stream` has ended."""
        assert self.sock is not None
        while stream not in self.trailers:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the plugin closed the connection")
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    self.bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    headers = dict(event.headers)
                    if b"grpc-status" in headers:
                        self.trailers[event.stream_id] = headers
            self.sock.sendall(self.h2.data_to_send())
        trailers = self.trailers[stream]
        body = bytes(self.bodies.get(stream, b""))
        from urllib.parse import unquote

        return Answer(
            int(trailers[b"grpc-status"]), unquote(trailers.get(b"grpc-message", b"").decode()), body[5:]
        )

    def call(self, path: str, message: bytes = b"") -> Answer:
        return self.wait(self.send(path, message))

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        """(exit code, stderr) once the process has ended."""
        _, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, err.decode()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
