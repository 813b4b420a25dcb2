"""The warm zygote: each start served with its own environment and cwd, and nothing left behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provider import install, server, tls, zygote

COOKIE = {server.MAGIC_COOKIE_KEY: server.MAGIC_COOKIE_VALUE}
DEADLINE_SECONDS = 15.0


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


class Plugin:
    """The installed launcher, with a private cache (and so a zygote socket) of its own."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.cache = home / "c"
        self.executable = install.install(home / "plugins")
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            tls.CACHE_ENV: str(self.cache),
            zygote.DAEMON_ENV: "1",
            **COOKIE,
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def socket_path(self) -> str:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(tls.CACHE_ENV, str(self.cache))
            return zygote.socket_path()

    def start(self, cwd: Path | None = None, **env: str) -> tuple[subprocess.Popen[bytes], int, str]:
        """(launcher, pid of the process that serves, handshake line) of one plugin start."""
        process = subprocess.Popen(
            [str(self.executable)], stdout=subprocess.PIPE, env={**self.env, **env}, cwd=cwd or self.home
        )
        self.processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        match = re.search(r"cloudbackup-plugin-(\d+)-", line)
        assert match, line
        return process, int(match.group(1)), line

    def warm(self, **env: str) -> None:
        """Start once (which spawns the zygote) and wait until the zygote answers."""
        process, _, _ = self.start(**env)
        process.kill()
        process.wait()

        def answers() -> bool:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.socket_path())
                return probe.recv(16) == b"ready\n"
            except OSError:
                return False
            finally:
                probe.close()

        wait_until(answers, "the zygote answers")

    def close(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        zygote.stop(self.socket_path())


@pytest.fixture
def plugin() -> Iterator[Plugin]:
    # A short path: unix socket paths are limited to 108 bytes.
    home = Path(tempfile.mkdtemp(prefix="cbz-"))
    plugin = Plugin(home)
    yield plugin
    plugin.close()
    shutil.rmtree(home, ignore_errors=True)


def test_each_warm_start_is_served_with_its_own_environment_and_working_directory(plugin: Plugin) -> None:
    spawned_with = plugin.home / "spawned-with"
    spawned_with.mkdir()
    plugin.warm(TMPDIR=str(spawned_with))
    launcher, served_by, line = plugin.start()
    assert served_by != launcher.pid, "expected a start served by the zygote's child"
    # No TMPDIR in this start: the default, whatever the start that spawned the zygote had.
    assert "|unix|/tmp/cloudbackup-plugin-" in line
    for name in ("first", "second"):
        workdir = plugin.home / name
        workdir.mkdir()
        launcher, served_by, line = plugin.start(cwd=workdir, TMPDIR=str(workdir))
        assert served_by != launcher.pid, "expected a start served by the zygote's child"
        # The plugin's socket goes in $TMPDIR: this start's, not the zygote's nor the previous start's.
        assert f"|unix|{workdir}/cloudbackup-plugin-" in line
        assert os.readlink(f"/proc/{served_by}/cwd") == str(workdir)


def test_the_serving_child_leaves_when_its_launcher_is_killed(plugin: Plugin) -> None:
    plugin.warm()
    launcher, served_by, _ = plugin.start()
    assert served_by != launcher.pid
    launcher.kill()
    launcher.wait()
    wait_until(lambda: gone(served_by), "the child has gone")


def test_launcher_and_child_leave_when_terraform_is_killed(plugin: Plugin) -> None:
    plugin.warm()
    # A stand-in for Terraform: starts the plugin with its stdout, says the launcher's pid, then waits.
    stand_in = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; p = subprocess.Popen([sys.argv[1]]); "
            "sys.stderr.write(f'{p.pid}\\n'); sys.stderr.flush(); p.wait()",
            str(plugin.executable),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**plugin.env},
    )
    plugin.processes.append(stand_in)
    assert stand_in.stdout is not None and stand_in.stderr is not None
    launcher = int(stand_in.stderr.readline())
    served_by = int(re.search(rb"cloudbackup-plugin-(\d+)-", stand_in.stdout.readline()).group(1))  # type: ignore[union-attr]
    assert served_by != launcher
    stand_in.send_signal(signal.SIGKILL)
    stand_in.wait()
    wait_until(lambda: gone(served_by) and gone(launcher), "launcher and child have gone")


def test_a_cold_plugin_leaves_when_terraform_is_killed_before_connecting(plugin: Plugin) -> None:
    stand_in = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; p = subprocess.Popen([sys.argv[1]]); "
            "sys.stderr.write(f'{p.pid}\\n'); sys.stderr.flush(); p.wait()",
            str(plugin.executable),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**plugin.env, zygote.DAEMON_ENV: "0"},
    )
    plugin.processes.append(stand_in)
    assert stand_in.stdout is not None and stand_in.stderr is not None
    launcher = int(stand_in.stderr.readline())
    line = stand_in.stdout.readline().decode()
    socket_file = line.split("|")[3]
    stand_in.send_signal(signal.SIGKILL)
    stand_in.wait()
    wait_until(lambda: gone(launcher), "the plugin has gone")
    assert not os.path.exists(socket_file)


def test_under_ci_the_plugin_serves_in_process_unless_the_zygote_is_asked_for(plugin: Plugin) -> None:
    launcher, served_by, _ = plugin.start(CI="true", **{zygote.DAEMON_ENV: ""})
    assert served_by == launcher.pid
    assert not zygote.enabled({"CI": "true"})
    assert zygote.enabled({"CI": "true", zygote.DAEMON_ENV: "1"})
    assert zygote.enabled({})
    assert not zygote.enabled({zygote.DAEMON_ENV: "0"})


def test_with_the_zygote_turned_off_every_start_is_served_in_process(plugin: Plugin) -> None:
    for _ in range(2):
        launcher, served_by, _ = plugin.start(**{zygote.DAEMON_ENV: "0"})
        assert served_by == launcher.pid
    assert not os.path.exists(plugin.socket_path())


def test_the_zygote_and_its_socket_are_private_to_the_user(plugin: Plugin) -> None:
    plugin.warm()
    path = Path(plugin.socket_path())
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    pid = int(Path(f"{path}.pid").read_text())
    with open(f"/proc/{pid}/environ", "rb") as environ:
        names = {item.split(b"=", 1)[0].decode() for item in environ.read().split(b"\0") if item}
    # The zygote was spawned by a start that had the magic cookie; it keeps none of that environment.
    assert server.MAGIC_COOKIE_KEY not in names and zygote.DAEMON_ENV not in names


def test_a_zygote_refuses_a_directory_others_can_reach(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    zygote.serve_forever(str(shared / "plugin.sock"))
    assert list(shared.iterdir()) == []


def test_a_change_to_a_source_the_zygote_loaded_retires_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "provider").mkdir()
    module = tmp_path / "provider" / "loaded.py"
    module.write_text("x = 1\n")
    monkeypatch.setattr(zygote, "ROOT", str(tmp_path))
    sources = zygote._Sources()
    assert not sources.changed()
    module.write_text("x = 22\n")
    assert sources.changed()
