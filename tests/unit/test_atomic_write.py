"""contract.files.write_atomic: a file is replaced whole, with the mode asked for, or left as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from contract.files import write_atomic


def test_a_write_replaces_the_whole_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"the old content, longer than the new one")
    write_atomic(target, b"new", durable=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_the_file_gets_the_mode_asked_for_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        write_atomic(tmp_path / "plugin", b"#!/bin/sh\n", mode=0o755)
        write_atomic(tmp_path / "key", b"secret")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "plugin").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    # A directory in the way: the rename fails after the bytes were written.
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_bytes(b"kept")
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert (target / "inside").read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_named_temporary_file_is_the_one_used(tmp_path: Path) -> None:
    target, partial = tmp_path / "meta.json", tmp_path / "meta.json.partial"
    write_atomic(target, b"{}", temporary=partial)
    assert target.read_bytes() == b"{}" and not partial.exists()
