"""The plugin as Terraform runs it: each start cold and gone with its run, logged, installed alike."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import hcl
import pytest
from tfkit import PROVIDER_BLOCK, Shim, Workspace, terraform_binary

from provider.runtime import install

pytestmark = pytest.mark.acceptance


def current_terraform() -> str:
    """The machine's own terraform when it is 1.6 or newer (refined unknowns, plan_destroy), else skip."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("no terraform on PATH: the current-Terraform checks did not run")
    out = subprocess.run([binary, "version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Terraform v(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < (1, 6):
        pytest.skip(f"terraform on PATH is older than 1.6: {out.splitlines()[0]}")
    return binary


def run(binary: str, workspace: Workspace, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *args, "-no-color", "-input=false"],
        cwd=workspace.path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def plugin_processes(home: Path) -> list[str]:
    """Command lines of running processes started from this session's plugin installation."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(home) in cmdline and ("plugin-launcher" in cmdline or "terraform-provider" in cmdline):
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_each_run_configures_the_provider_from_its_own_environment(workspace: Workspace, unique: str) -> None:
    workspace.write(hcl.project(f"env-{unique}"))
    first = workspace.run("plan", "-input=false")
    assert first.returncode == 0, first.stderr
    wrong = workspace.run("plan", "-input=false", env={"CLOUDBACKUP_PRIVATE_KEY": "not-the-key"})
    assert wrong.returncode == 1
    assert "Configuring the provider" in wrong.stderr, wrong.stderr
    missing = workspace.run("plan", "-input=false", env={"CLOUDBACKUP_PUBLIC_KEY": ""})
    assert missing.returncode == 1 and "Missing cloudbackup API key" in missing.stderr, missing.stderr
    again = workspace.run("plan", "-input=false")
    assert again.returncode == 0, again.stderr


def test_current_terraform_plans_applies_and_plans_a_destroy_and_no_plugin_outlives_it(
    workspace: Workspace, terraform_home: Path, unique: str
) -> None:
    terraform = current_terraform()
    workspace.write(hcl.project(f"now-{unique}") + hcl.cluster(f"now-{unique}") + hcl.backup())
    applied = run(terraform, workspace, "apply", "-auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = run(terraform, workspace, "plan", "-detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    destroy = run(terraform, workspace, "plan", "-destroy", "-detailed-exitcode")
    assert destroy.returncode == 2, destroy.stdout + destroy.stderr
    assert "3 to destroy" in destroy.stdout
    assert plugin_processes(terraform_home.parent) == []
    gone = run(terraform, workspace, "destroy", "-auto-approve")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert plugin_processes(terraform_home.parent) == []


def test_tf_log_debug_shows_each_call_the_plugin_serves_and_never_the_key(
    workspace: Workspace, shim: Shim, unique: str
) -> None:
    terraform = current_terraform()
    workspace.write(hcl.project(f"log-{unique}"))
    quiet = run(terraform, workspace, "plan")
    assert quiet.returncode == 0, quiet.stderr
    assert "served " not in quiet.stderr + quiet.stdout
    logged = run(terraform, workspace, "plan", TF_LOG="debug")
    assert logged.returncode == 0, logged.stderr
    ours = [line for line in logged.stderr.splitlines() if "terraform-provider-cloudbackup" in line]
    for method in ("ValidateResourceConfig", "ConfigureProvider", "PlanResourceChange"):
        assert any(f"served {method}" in line and "[DEBUG]" in line for line in ours), "\n".join(ours)
    assert shim.private_key not in logged.stderr + logged.stdout


def test_installations_in_different_places_are_identical_and_share_one_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trees = []
    for name in ("alice", "bob"):
        home = tmp_path / name
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
        monkeypatch.delenv(install.LAUNCHER_ENV, raising=False)
        plugins = home / "elsewhere" / name / "plugins"
        install.install(plugins, python=f"/opt/{name}/venv/bin/python3")
        files = {p.relative_to(plugins): p.read_bytes() for p in sorted(plugins.rglob("*")) if p.is_file()}
        assert files, "nothing was installed"
        for content in files.values():
            assert not re.search(rb"(^|[\s'\"=])/(tmp|home|opt|work|root|usr)\b", content), content
        assert f"/opt/{name}/venv/bin/python3".encode() in install.launcher_path().read_bytes()
        trees.append((home, plugins, files))
    assert trees[0][2] == trees[1][2]
    # A lock file made against alice's installation is accepted against bob's.
    locked = None
    for home, plugins, _ in trees:
        work = home / "work"
        work.mkdir()
        (work / "main.tf").write_text(PROVIDER_BLOCK)
        (home / ".terraformrc").write_text(
            f'provider_installation {{\n  filesystem_mirror {{\n    path = "{plugins}"\n  }}\n}}\n'
        )
        if locked is not None:
            (work / ".terraform.lock.hcl").write_text(locked)
        env = {**os.environ, "HOME": str(home), "TF_CLI_CONFIG_FILE": str(home / ".terraformrc")}
        result = subprocess.run(
            [terraform_binary(), "init", "-input=false", "-no-color"],
            cwd=work,
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        if locked is None:
            locked = (work / ".terraform.lock.hcl").read_text()
            assert "h1:" in locked
        else:
            assert (work / ".terraform.lock.hcl").read_text() == locked
