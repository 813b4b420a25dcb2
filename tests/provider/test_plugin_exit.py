"""The plugin leaves cleanly in any state: exit code 0, nothing on stderr, no socket left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest
from pluginkit import COOKIE, PluginProcess, grpc

from provider.runtime import server

SHUTDOWN = "/plugin.GRPCController/Shutdown"
CONFIGURE = "/tfplugin6.Provider/ConfigureProvider"
DEADLINE_SECONDS = 20.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def gone(pid: int) -> bool:
    """Whether a process has ended (a zombie no one has reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_call_that_finishes_after_shutdown_writes_nothing_to_the_closed_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda hook: errors.append(hook.exc_value))
    release = threading.Event()
    slow_done = threading.Event()

    def slow(_: bytes) -> bytes:
        release.wait(DEADLINE_SECONDS)
        slow_done.set()
        return b"late"

    handlers = {"/slow": slow, SHUTDOWN: lambda _: b""}
    ours, theirs = socket.socketpair()
    serving = threading.Thread(target=server._Connection(ours, handlers, threading.Event()).run)
    serving.start()
    before = set(threading.enumerate())
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    headers = [(":method", "POST"), (":scheme", "http"), (":path", "/slow"), (":authority", "x")]
    for path in ("/slow", SHUTDOWN):
        stream = client.get_next_available_stream_id()
        client.send_headers(stream, [*headers[:2], (":path", path), headers[3]])
        client.send_data(stream, grpc(b""), end_stream=True)
    theirs.sendall(client.data_to_send())
    serving.join(DEADLINE_SECONDS)
    assert not serving.is_alive(), "Shutdown did not end the connection"
    # The slow call finishes now, after the connection and its wake-up pipe were closed.
    workers = set(threading.enumerate()) - before
    release.set()
    assert slow_done.wait(DEADLINE_SECONDS)
    for worker in workers:
        worker.join(DEADLINE_SECONDS)
    theirs.close()
    assert errors == []


@pytest.fixture
def stalled_api() -> Iterator[tuple[str, socket.socket]]:
    """A URL whose server accepts connections and never answers: a call to it stays in flight."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", listener
    listener.close()


def configure_request(url: str) -> bytes:
    import msgpack
    from tf.gen import tfplugin_pb2 as pb

    config = {"url": url, "public_key": "pub", "private_key": "secret-private-key"}
    return pb.ConfigureProvider.Request(
        config=pb.DynamicValue(msgpack=msgpack.packb(config))
    ).SerializeToString()


def test_shutdown_while_idle_exits_0_quietly(tmp_path: Path) -> None:
    plugin = PluginProcess(tmp_path)
    plugin.connect()
    assert plugin.call(SHUTDOWN).status == 0
    assert plugin.finish() == (0, "")
    assert not os.path.exists(plugin.handshake.split("|")[3])


def test_shutdown_in_the_middle_of_a_call_exits_0_quietly(
    tmp_path: Path, stalled_api: tuple[str, socket.socket]
) -> None:
    url, _ = stalled_api
    plugin = PluginProcess(tmp_path)
    plugin.connect()
    plugin.send(CONFIGURE, configure_request(url))
    assert plugin.call(SHUTDOWN).status == 0
    assert plugin.finish() == (0, "")


def test_a_connection_closed_in_the_middle_of_a_call_exits_0_quietly(
    tmp_path: Path, stalled_api: tuple[str, socket.socket]
) -> None:
    url, _ = stalled_api
    plugin = PluginProcess(tmp_path)
    plugin.connect()
    plugin.send(CONFIGURE, configure_request(url))
    assert plugin.sock is not None
    plugin.sock.close()
    assert plugin.finish() == (0, "")


def test_a_plugin_whose_terraform_is_killed_before_connecting_leaves_quietly(tmp_path: Path) -> None:
    errors = tmp_path / "stderr"
    stand_in = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; p = subprocess.Popen([sys.executable, '-m', 'provider.runtime.main'], "
            "stderr=open(sys.argv[1], 'wb')); sys.stderr.write(f'{p.pid}\\n'); sys.stderr.flush(); p.wait()",
            str(errors),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **COOKIE, "PLUGIN_CLIENT_CERT": "-", "CLOUDBACKUP_PLUGIN_CACHE": str(tmp_path)},
    )
    assert stand_in.stdout is not None and stand_in.stderr is not None
    plugin = int(stand_in.stderr.readline())
    socket_file = stand_in.stdout.readline().decode().split("|")[3]
    stand_in.kill()
    stand_in.wait()
    wait_until(lambda: gone(plugin), "the plugin has gone")
    assert not os.path.exists(socket_file)
    assert errors.read_text() == ""
