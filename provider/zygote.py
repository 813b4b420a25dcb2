"""A warm, pre-imported plugin server per user: each plugin start forks a ready child instead of importing.

Terraform starts the plugin three times for one plan, and Python spends most of a start importing. The
launcher (provider.main) connects to this process over a private unix socket, passes its stdin, stdout
and stderr and its environment; a forked child serves Terraform exactly as a cold start would, and the
launcher waits for it. The zygote leaves on its own after an idle period, or when the plugin's source
changes; without it (or with CLOUDBACKUP_PLUGIN_DAEMON=0) the launcher serves in-process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

DAEMON_ENV = "CLOUDBACKUP_PLUGIN_DAEMON"
IDLE_SECONDS_ENV = "CLOUDBACKUP_PLUGIN_DAEMON_IDLE"
DEFAULT_IDLE_SECONDS = 900
# Kept to os.path: the launcher imports this module on every start.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def socket_path() -> str:
    """The zygote's socket, private to the user (0700 directory); one per interpreter and source tree."""
    import zlib

    from provider import tls

    key = f"{zlib.crc32(f'{sys.executable}|{ROOT}'.encode()):08x}"
    path = os.path.join(tls.cache_dir(), f"plugin-{key}.sock")
    if len(path) > 100:  # sun_path holds 108 bytes
        path = os.path.join("/tmp", f"cloudbackup-{os.getuid()}", f"plugin-{key}.sock")
    return path


def _fingerprint() -> float:
    """The newest modification time of the plugin's sources: a change retires the zygote."""
    newest = 0.0
    for top, suffix, recurse in (
        ("provider", ".py", True),
        ("provider-schema", ".json", False),
        ("shim", ".py", False),
    ):
        for directory, dirs, files in os.walk(os.path.join(ROOT, top)):
            newest = max(
                [newest, *(os.stat(os.path.join(directory, f)).st_mtime for f in files if f.endswith(suffix))]
            )
            if not recurse:
                break
            dirs[:] = [d for d in dirs if d != "__pycache__"]
    return newest


def connect() -> int | None:
    """Hand this start to the zygote and wait for its child; None when the caller must serve by itself.

    Only builtin modules are used here: this runs on every plugin start, before anything else.
    """
    import _socket

    path = socket_path()
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        spawn()
        return None
    payload = "\0".join([os.getcwd(), *(f"{k}={v}" for k, v in os.environ.items())]).encode(
        "utf-8", "surrogateescape"
    )
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    conn.sendmsg([len(payload).to_bytes(4, "big") + payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    lines = _lines(conn)
    first = next(lines, "stale")
    if not first.isdigit():
        conn.close()
        spawn()
        return None
    child = int(first)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
    code = 1
    for line in lines:
        if line.startswith("exit "):
            code = int(line[5:])
    return code


def _lines(conn):
    buffer = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode()


def _preload() -> None:
    """Import and build everything a plugin call needs, so that children start warm."""
    import h2.config
    import h2.connection
    import h2.events  # noqa: F401

    from provider import schema, server, tls  # noqa: F401
    from provider.service import ProviderService
    from provider.validation import _validator

    schema.provider_schema_response()
    service = ProviderService()
    service.handlers()
    for resource in [*service.plugin.resources.values(), *service.plugin.data_sources.values()]:
        for attribute in resource.schema.attributes:
            if attribute.settable:
                _validator(attribute)
        for block in resource.schema.blocks:
            for attribute in block.attributes:
                _validator(attribute)
    for attribute in schema.load().provider.attributes:
        _validator(attribute)
    import http.client  # noqa: F401
    import ssl  # noqa: F401


def _receive(conn) -> tuple[list[int], bytes]:
    import array
    import socket

    fds = array.array("i")
    data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if len(data) < 4:
        return list(fds), b""
    size = int.from_bytes(data[:4], "big")
    body = bytearray(data[4:])
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            break
        body.extend(chunk)
    return list(fds), bytes(body)


def _child(conn, fds: list[int], body: bytes) -> None:
    """In the forked child: become the plugin process the launcher stands for, and serve Terraform."""
    import threading

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # go-plugin servers ignore interrupts: Terraform stops them through the protocol.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for target, fd in zip((0, 1, 2), fds, strict=False):
        os.dup2(fd, target)
        os.close(fd)
    cwd, *pairs = body.decode("utf-8", "surrogateescape").split("\0")
    os.environ.clear()
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key:
            os.environ[key] = value
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    conn.sendall(f"{os.getpid()}\n".encode())

    def watch() -> None:
        # The launcher is the process Terraform knows: when it is gone, so is this child.
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    from provider import server
    from provider.main import _handlers

    code = 0
    try:
        server.serve(_handlers)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    with contextlib.suppress(OSError):
        conn.sendall(f"exit {code}\n".encode())
    os._exit(code)


def serve_forever(path: str) -> None:
    """Bind the socket (once per user: a lock file decides), preload, and fork a child per launcher."""
    import fcntl
    import select
    import socket

    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another zygote serves this socket
    fingerprint = _fingerprint()
    _preload()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    with open(path + ".pid", "w") as pid_file:
        pid_file.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel

    def leave(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    idle = float(os.environ.get(IDLE_SECONDS_ENV) or DEFAULT_IDLE_SECONDS)
    try:
        while True:
            ready, _, _ = select.select([listener], [], [], idle)
            if not ready:
                return
            conn, _ = listener.accept()
            fds, body = _receive(conn)
            if not body or _fingerprint() != fingerprint:
                # The plugin's source changed: the launcher serves this start itself and starts a new zygote.
                conn.sendall(b"stale\n")
                conn.close()
                for fd in fds:
                    os.close(fd)
                return
            pid = os.fork()
            if pid == 0:
                listener.close()
                os.close(lock)
                _child(conn, fds, body)
            conn.close()
            for fd in fds:
                os.close(fd)
    finally:
        for leftover in (path, path + ".pid"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        listener.close()


def spawn() -> None:
    """Start a zygote in the background, detached from Terraform's process group and pipes."""
    code = f"import sys; sys.path[:0] = {sys.path!r}; from provider.main import main; main(['--zygote'])"
    pid = os.fork()
    if pid != 0:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, 1024)
        os.execv(sys.executable, [sys.executable, "-SE", "-c", code])
    finally:
        os._exit(1)


def stop(path: str | None = None) -> bool:
    """Stop the zygote serving `path` (default: this user's), if one runs; True when one was stopped."""
    path = path or socket_path()
    try:
        with open(path + ".pid") as pid_file:
            pid = int(pid_file.read().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return False
    return True
