"""A warm, pre-imported plugin server per user: each plugin start is served by a child forked in advance.

Terraform starts the plugin three times for one plan, and a cold Python start spends most of its time
importing. The launcher (provider.main) connects to this process over a private unix socket and passes
its stdin, stdout and stderr, its working directory, umask and environment; a spare child, forked before
it was needed, takes the connection and serves Terraform exactly as a cold start would, while the
launcher waits for it and stands for it (Terraform knows the launcher's pid). docs/plugin-runtime.md
describes what it keeps, how it ends, and how to turn it off.
"""

from __future__ import annotations

import os
import sys

# typing itself takes longer to import than the launcher's whole work: the constant is spelled out.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Mapping

DAEMON_ENV = "CLOUDBACKUP_PLUGIN_DAEMON"
IDLE_SECONDS_ENV = "CLOUDBACKUP_PLUGIN_DAEMON_IDLE"
DEFAULT_IDLE_SECONDS = 900
# How often the launcher checks that Terraform is still there; how long it then gives the child to leave.
WATCH_SECONDS = 0.5
GRACE_SECONDS = 5.0
# How long the launcher waits for a spare child to take its connection before it serves by itself.
READY_SECONDS = 2.0
# How often the zygote checks that its socket is still the one it bound (a deleted HOME retires it).
SOCKET_CHECK_SECONDS = 30.0
# What the zygote keeps of the environment it is spawned with: no key or token lingers in a daemon.
KEPT_ENV = (
    "HOME",
    "PATH",
    "TMPDIR",
    "LANG",
    "XDG_CACHE_HOME",
    "CLOUDBACKUP_PLUGIN_CACHE",
    IDLE_SECONDS_ENV,
    "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION",
)
# Kept to os.path: the launcher imports this module on every start.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """CLOUDBACKUP_PLUGIN_DAEMON=0 turns the zygote off and =1 on; unset, it is on except under CI=true."""
    environ = os.environ if environ is None else environ
    asked = environ.get(DAEMON_ENV, "").strip().lower()
    if asked in _TRUE:
        return True
    if asked in _FALSE:
        return False
    # A CI job runs terraform a few times and ends: a daemon outliving the job is not wanted there.
    return environ.get("CI", "").strip().lower() not in _TRUE


def _key(text: str) -> str:
    """FNV-1a, 32 bits: a stable short name without importing zlib or hashlib on every start."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8", "surrogateescape"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def socket_path() -> str:
    """The zygote's socket, private to the user (0700 directory); one per interpreter and source tree."""
    from provider import tls

    key = _key(f"{sys.executable}|{ROOT}")
    path = os.path.join(tls.cache_dir(), f"plugin-{key}.sock")
    if len(path) > 100:  # sun_path holds 108 bytes
        path = os.path.join("/tmp", f"cloudbackup-{os.getuid()}", f"plugin-{key}.sock")
    return path


# The launcher's side: builtin modules only (_socket, _signal), since it runs on every plugin start.


def _peer_is_me(conn) -> bool:
    """Whether the process at the other end of a unix socket runs as this user (Linux: SO_PEERCRED)."""
    import _socket

    option = getattr(_socket, "SO_PEERCRED", None)
    if option is None:
        # Elsewhere the 0700 directory is the guard: it must be ours and closed to others.
        info = os.stat(os.path.dirname(socket_path()))
        return info.st_uid == os.getuid() and not info.st_mode & 0o077
    credentials = conn.getsockopt(_socket.SOL_SOCKET, option, 12)
    return int.from_bytes(credentials[4:8], sys.byteorder) == os.getuid()


def connect() -> int | None:
    """Hand this start to the zygote and wait for its child; None when the caller must serve by itself."""
    import _signal
    import _socket

    path = socket_path()
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        spawn()
        return None
    if not _peer_is_me(conn):
        # Someone else's socket in our place: tell it nothing, and serve in-process.
        conn.close()
        return None
    parent = os.getppid()
    conn.settimeout(WATCH_SECONDS)
    # Nothing is handed over before a child says it has taken the connection: a launcher that gives up
    # waiting leaves no child holding its stdio.
    ready = next(_lines(conn, lambda: os.getppid() != parent, int(READY_SECONDS / WATCH_SECONDS)), "")
    if ready == "orphaned":
        return 1
    if ready != "ready":
        conn.close()
        return None
    umask = os.umask(0o077)
    os.umask(umask)
    payload = "\0".join([os.getcwd(), str(umask), *(f"{k}={v}" for k, v in os.environ.items())]).encode(
        "utf-8", "surrogateescape"
    )
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    try:
        conn.sendmsg(
            [len(payload).to_bytes(4, "big") + payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)]
        )
    except OSError:
        conn.close()
        return None
    lines = _lines(conn, lambda: os.getppid() != parent)
    first = next(lines, "stale")
    if first == "orphaned":
        return 1
    if not first.isdigit():
        # The zygote retired (its sources changed) or went away: serve this start, and start a new one.
        conn.close()
        spawn()
        return None
    child = int(first)
    # go-plugin servers ignore interrupts (Terraform stops them through the protocol); a terminate is
    # passed on to the child that serves.
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    _signal.signal(_signal.SIGTERM, lambda *_: _kill(child, _signal.SIGTERM))
    code = 1
    for line in lines:
        if line.startswith("exit "):
            code = int(line[5:])
        elif line == "orphaned":
            # Terraform has gone (killed, say): so must the child, or it would wait for it for ever.
            _kill(child, _signal.SIGTERM)
            for late in _lines(conn, None, int(GRACE_SECONDS / WATCH_SECONDS)):
                if late == "timeout":
                    _kill(child, _signal.SIGKILL)
            return 1
    return code


def _kill(pid: int, signal_number: int) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        os.kill(pid, signal_number)


def _lines(conn, orphaned, deadline_ticks: int | None = None):
    """The zygote's lines to the launcher; "orphaned" once `orphaned()` turns true while waiting.

    With `deadline_ticks`, waits at most that many ticks and then yields "timeout".
    """
    buffer = b""
    ticks = 0
    while True:
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            ticks += 1
            if orphaned is not None and orphaned():
                yield "orphaned"
                return
            if deadline_ticks is not None and ticks >= deadline_ticks:
                yield "timeout"
                return
            continue
        except InterruptedError:
            continue
        except OSError:
            return
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode()


def spawn() -> None:
    """Start a zygote in the background: its own session, no pipes of Terraform's, a scrubbed environment."""
    code = f"import sys; sys.path[:0] = {sys.path!r}; from provider.main import main; main(['--zygote'])"
    environ = {k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith("LC_")}
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
        os.execve(sys.executable, [sys.executable, "-SE", "-c", code], environ)
    finally:
        os._exit(1)


def stop(path: str | None = None) -> bool:
    """Stop the zygote serving `path` (default: this user's), if one runs; True when one was stopped."""
    path = path or socket_path()
    try:
        with open(path + ".pid") as pid_file:
            pid = int(pid_file.read().strip())
        os.kill(pid, 15)
    except (OSError, ValueError):
        return False
    return True


# The zygote's side.


class _Sources:
    """The files the zygote's code came from, with their sizes and times: a change retires the zygote."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, int]] = {}
        root = os.path.realpath(ROOT)
        for top, suffix in (("provider", ".py"), ("contract", ".py"), ("contract", ".json"), ("shim", ".py")):
            for directory, dirs, files in os.walk(os.path.join(root, top)):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for name in files:
                    if name.endswith(suffix):
                        path = os.path.join(directory, name)
                        self.seen[path] = self._stat(path)

    @staticmethod
    def _stat(path: str) -> tuple[int, int]:
        try:
            info = os.stat(path)
        except OSError:
            return (-1, -1)
        return (info.st_mtime_ns, info.st_size)

    def keep_loaded(self) -> None:
        """Watch only what the zygote imported (and the schema documents): the rest is read fresh."""
        files = (getattr(module, "__file__", None) for module in list(sys.modules.values()))
        loaded = {os.path.realpath(f) for f in files if f}
        self.seen = {p: s for p, s in self.seen.items() if p in loaded or p.endswith(".json")}

    def changed(self) -> bool:
        return any(self._stat(path) != stamp for path, stamp in self.seen.items())


def _preload() -> None:
    """Import and build everything a plugin call needs, so that children start warm."""
    import hpack  # noqa: F401

    from provider import http2, schema, server, tls  # noqa: F401
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


def _private(directory: str) -> bool:
    info = os.lstat(directory)
    return info.st_uid == os.getuid() and not info.st_mode & 0o077


def _take_lock(path: str) -> int | None:
    """The lock that makes one zygote per socket; a retiring one may hold it for a moment longer."""
    import fcntl
    import time

    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    for _ in range(50):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except OSError:
            time.sleep(0.04)
    os.close(lock)
    return None


def serve_forever(path: str) -> None:
    """Bind the socket (one zygote per socket: a lock file decides), preload, and keep a spare child ready.

    The spare child accepts the next launcher itself, so no fork is on a start's path; it says when it
    has taken one, and the zygote forks the next spare once the starts being served have ended. The
    zygote leaves after the idle period, when its sources change, when its socket is removed or
    replaced, or on SIGTERM; a spare leaves with it, children serving a start do not.
    """
    import contextlib
    import gc
    import select
    import signal
    import socket
    import time

    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not _private(directory):
        return  # a directory others can reach (or someone else's): no socket of ours goes there
    os.umask(0o077)
    lock = _take_lock(path)
    if lock is None:
        return  # another zygote serves this socket
    pid_tmp = f"{path}.pid.{os.getpid()}"
    with open(pid_tmp, "w") as pid_file:
        pid_file.write(f"{os.getpid()}\n")
    os.replace(pid_tmp, path + ".pid")

    def leave(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = None
    bound = None
    try:
        sources = _Sources()
        _preload()
        sources.keep_loaded()
        # What the zygote built is shared with every child: keep the collector off those pages.
        gc.collect()
        gc.freeze()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(64)
        bound = _identity(path)
        idle = float(os.environ.get(IDLE_SECONDS_ENV) or DEFAULT_IDLE_SECONDS)
        # Children report on `reports`: b"t" when a spare took a start, b"s" when the sources changed.
        reports_r, reports_w = os.pipe()
        # A spare watches `life_r`: it reads end-of-file once the zygote is gone.
        life_r, life_w = os.pipe()
        spare_fds = (listener, lock, reports_r, reports_w, life_r, life_w)
        spare: _Child | None = _Child(spare_fds, sources)
        serving: list[_Child] = []
        last_start = time.monotonic()
        while True:
            remaining = idle - (time.monotonic() - last_start)
            if remaining <= 0:
                return
            children = [spare, *serving] if spare is not None else serving
            waits = [reports_r, *(c.exit_fd for c in children if c.exit_fd is not None)]
            if spare is None:
                waits.append(listener)  # a launcher waiting while there is no spare
            check = 1.0 if any(c.exit_fd is None for c in children) else SOCKET_CHECK_SECONDS
            ready, _, _ = select.select(waits, [], [], min(remaining, check))
            reports = os.read(reports_r, 64) if reports_r in ready else b""
            if b"s" in reports:
                return
            if b"t" in reports and spare is not None:
                last_start = time.monotonic()
                serving.append(spare)
                spare = None
            serving = [c for c in serving if not c.ended(ready)]
            if spare is not None and spare.ended(ready):
                spare = None  # it crashed or was killed before taking a start
            # The next spare is forked (and rehearses) once the starts being served have ended, so that
            # it takes no CPU from them; at once when a launcher is already waiting.
            if spare is None and (not serving or listener in ready):
                spare = _Child(spare_fds, sources)
            if _identity(path) != bound:
                return
    finally:
        # Remove only what is still ours: after a HOME was deleted and made again, a newer zygote may
        # have the path.
        if listener is not None:
            if bound is not None and _identity(path) == bound:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            listener.close()
        with contextlib.suppress(OSError, ValueError):
            with open(path + ".pid") as pid_file:
                mine = int(pid_file.read().strip()) == os.getpid()
            if mine:
                os.unlink(path + ".pid")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


class _Child:
    """A forked child (the spare, or one serving a start), and a way to learn that it ended."""

    def __init__(self, fds: tuple, sources: _Sources) -> None:
        self.pid = _fork_spare(fds, sources)
        self.exit_fd: int | None = None
        try:
            # Readable once the process has ended (Linux 5.3 and newer); elsewhere it is polled.
            self.exit_fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self.exit_fd = None

    def ended(self, ready: list[int]) -> bool:
        """Whether it has ended (its descriptor, if any, is closed then)."""
        if self.exit_fd is not None:
            if self.exit_fd not in ready:
                return False
            os.close(self.exit_fd)
            return True
        try:
            os.kill(self.pid, 0)  # children are reaped at once (SIGCHLD ignored): a gone one is ESRCH
        except OSError:
            return True
        return False


def _fork_spare(fds: tuple, sources: _Sources) -> int:
    pid = os.fork()
    if pid != 0:
        return pid
    listener, lock, reports_r, reports_w, life_r, life_w = fds
    code = 1
    try:
        os.close(lock)  # the lock belongs to the zygote alone: a child must not keep it
        os.close(reports_r)
        os.close(life_w)
        code = _spare(listener, reports_w, life_r, sources)
    finally:
        os._exit(code)


def _spare(listener, reports_w: int, life_r: int, sources: _Sources) -> int:
    """In a spare child: wait for a launcher (or the zygote's end), then become that launcher's plugin."""
    import select
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    rehearsal = _Rehearsal()
    listener.setblocking(False)
    while True:
        ready, _, _ = select.select([listener, life_r, *rehearsal.waits()], [], [])
        if listener in ready:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            # A launcher does not wait for a rehearsal: one still running is cut short.
            rehearsal.stop()
            break
        if life_r in ready:
            return 0
        rehearsal.check(ready)
    # Taken, whatever comes of it: the zygote forks the next spare at once.
    os.write(reports_w, b"t")
    listener.close()
    os.close(life_r)
    conn.setblocking(True)
    if not _peer_is_me(conn):
        return 0
    conn.sendall(b"ready\n")
    fds, body = _receive(conn)
    if not body or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return 0
    if sources.changed():
        # The plugin's source changed: the launcher serves this start itself and starts a new zygote.
        os.write(reports_w, b"s")
        conn.sendall(b"stale\n")
        return 0
    os.close(reports_w)
    return _serve_start(conn, fds, body)


class _Rehearsal:
    """A spare serves one GetProviderSchema over TLS and HTTP/2 to itself, on a socket pair, while it waits.

    A forked child copies each memory page the first time it writes to it, and Python writes to every
    object it uses (reference counts): a rehearsal of the start's path takes those copies (about a
    thousand pages, a third of a start's CPU time) before a launcher is waiting for them. It runs on
    threads of its own, so that a launcher that comes meanwhile stops it instead of waiting; it is only
    a warm-up, so whatever goes wrong in it is ignored (the start reports its own errors).
    """

    def __init__(self) -> None:
        import socket
        import threading

        self.done_r, self.done_w = os.pipe()
        self.ours, self.theirs = socket.socketpair()
        self.running = 2
        self.lock = threading.Lock()
        for target in (self._serve, self._ask):
            threading.Thread(target=self._run, args=(target,), daemon=True).start()

    def waits(self) -> list[int]:
        return [self.done_r] if self.done_r >= 0 else []

    def check(self, ready: list[int]) -> None:
        """Stop watching once the rehearsal has finished (its last thread writes to `done`)."""
        if self.done_r >= 0 and self.done_r in ready:
            os.close(self.done_r)
            self.done_r = -1

    def stop(self) -> None:
        import contextlib
        import socket

        for end in (self.ours, self.theirs):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def _run(self, target) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            target()
        with self.lock:
            self.running -= 1
            last = self.running == 0
        if last:
            for end in (self.ours, self.theirs):
                end.close()
            with contextlib.suppress(OSError):
                os.write(self.done_w, b"x")
            os.close(self.done_w)

    def _serve(self) -> None:
        import threading

        from provider import server, tls
        from provider.main import _handlers

        context = server._tls_context(tls.certificate()[0])
        sock = context.wrap_socket(self.ours, server_side=True)
        server._Connection(sock, _handlers(), threading.Event()).run()

    def _ask(self) -> None:
        import ssl

        from hpack import Encoder

        from provider import http2, tls
        from provider.main import GET_PROVIDER_SCHEMA, SHUTDOWN

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(tls.certificate()[0])
        context.set_alpn_protocols(["h2"])
        encoder = Encoder()
        with context.wrap_socket(self.theirs, server_hostname="localhost") as sock:
            sock.sendall(http2.PREFACE + http2.frame(http2.SETTINGS, 0, 0))
            for stream_id, path in ((1, GET_PROVIDER_SCHEMA), (3, SHUTDOWN)):
                headers = [(":method", "POST"), (":scheme", "https"), (":path", path), (":authority", "x")]
                block = encoder.encode([*headers, ("content-type", "application/grpc")])
                request = http2.frame(http2.HEADERS, http2.END_HEADERS, stream_id, block)
                sock.sendall(request + http2.frame(http2.DATA, http2.END_STREAM, stream_id, b"\0" * 5))
                if not _answered(sock, stream_id):
                    return


def _answered(sock, stream_id: int) -> bool:
    """Read frames until the answer on `stream_id` has ended; False if the connection ends first."""
    from provider import http2

    buffer = b""
    while True:
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            kind, flags = buffer[3], buffer[4]
            stream = int.from_bytes(buffer[5:9], "big")
            buffer = buffer[9 + length :]
            if kind == http2.HEADERS and flags & http2.END_STREAM and stream == stream_id:
                return True
        data = sock.recv(65536)
        if not data:
            return False
        buffer += data


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


def _serve_start(conn, fds: list[int], body: bytes) -> int:
    """Become the plugin process the launcher stands for: its stdio, cwd, umask and environment."""
    import contextlib
    import signal
    import threading

    from provider import server
    from provider.main import _handlers

    # go-plugin servers ignore interrupts: Terraform stops them through the protocol. A terminate (passed
    # on by the launcher) ends the child at once, leaving no socket behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: (server.remove_socket(), os._exit(1)))
    # Nothing the zygote or a rehearsal buffered may reach the launcher's streams.
    sys.stdout.flush()
    sys.stderr.flush()
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    cwd, umask, *pairs = body.decode("utf-8", "surrogateescape").split("\0")
    os.environ.clear()
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key:
            os.environ[key] = value
    os.umask(int(umask))
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    conn.sendall(f"{os.getpid()}\n".encode())

    def watch() -> None:
        # The launcher is the process Terraform knows: when it is gone (killed, say), so is this child.
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        server.remove_socket()
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
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
    return code
