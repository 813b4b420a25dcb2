"""Acceptance fixtures: one real `cloudbackup serve` (manual clock) and one installed plugin per session."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_terraform import IsFlagged, Terraform
from tfkit import PROVIDER_BLOCK, Shim, Workspace, console_script, terraform_binary

from provider import install


@pytest.fixture(scope="session")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shim]:
    data_dir = tmp_path_factory.mktemp("shim-data")
    command = [
        console_script("cloudbackup"),
        "serve",
        "--port",
        "0",
        "--manual-clock",
        "--data-dir",
        str(data_dir),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        pytest.fail("cloudbackup serve stopped before it printed its listening line")
    # Keep reading the shim's output so that its pipe never fills up.
    import threading

    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    keys = subprocess.run(
        [console_script("cloudbackup"), "keys", "create", "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    pair = json.loads(keys.stdout)
    yield Shim(url, pair["publicKey"], pair["privateKey"], data_dir)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def terraform_home(shim: Shim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh HOME with the plugin in Terraform's implied mirror, and one `terraform init`'d template."""
    home = tmp_path_factory.mktemp("home")
    patch = pytest.MonkeyPatch()
    patch.setenv("HOME", str(home))
    patch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    patch.delenv("TF_PLUGIN_CACHE_DIR", raising=False)
    patch.delenv("XDG_CACHE_HOME", raising=False)
    patch.setenv("CHECKPOINT_DISABLE", "1")
    patch.setenv("TF_IN_AUTOMATION", "1")
    patch.setenv("CLOUDBACKUP_URL", shim.url)
    patch.setenv("CLOUDBACKUP_PUBLIC_KEY", shim.public_key)
    patch.setenv("CLOUDBACKUP_PRIVATE_KEY", shim.private_key)
    install.install(home / ".terraform.d" / "plugins")
    template = home / "template"
    template.mkdir()
    (template / "main.tf").write_text(PROVIDER_BLOCK)
    rc, out, err = Terraform(working_dir=str(template), terraform_bin_path=terraform_binary()).init(
        no_color=IsFlagged, input=False
    )
    assert rc == 0, out + err
    yield template
    patch.undo()


@pytest.fixture
def workspace(terraform_home: Path, tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, terraform_home)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names, so tests sharing the shim never collide."""
    return uuid.uuid4().hex[:8]
