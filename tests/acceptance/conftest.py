"""Acceptance fixtures: one real `cloudbackup serve` (manual clock); one installed plugin per Terraform."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from python_terraform import IsFlagged, Terraform
from serveprocess import Serve
from tfkit import (
    PROVIDER_BLOCK,
    Release,
    Shim,
    Workspace,
    console_script,
    current_terraform,
    pinned_terraform,
)

from provider.runtime import install


@pytest.fixture(scope="session")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shim]:
    data_dir = tmp_path_factory.mktemp("shim-data")
    serve = Serve(data_dir, "--manual-clock", command=[console_script("cloudbackup")])
    keys = subprocess.run(
        [console_script("cloudbackup"), "keys", "create", "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    pair = json.loads(keys.stdout)
    yield Shim(serve.url, pair["publicKey"], pair["privateKey"], data_dir)
    serve.stop(timeout=10)


# Every Terraform test runs under the oldest release we support and under the machine's current one.
RELEASES: list[Release] = [pinned_terraform(), current_terraform()]
# Outcomes per release id, for the summary: what ran under which Terraform.
OUTCOMES: dict[str, dict[str, int]] = {}
RELEASE_OF: dict[str, str] = {}


def _param(release: Release) -> Any:
    marks = (
        [pytest.mark.skip(reason=f"Terraform {release.label}: {release.missing}")] if release.missing else []
    )
    return pytest.param(release, id=release.id, marks=marks)


@pytest.fixture(scope="session", params=[_param(r) for r in RELEASES])
def terraform(request: pytest.FixtureRequest) -> Release:
    """The Terraform release this test runs under (parametrized: tf1.0.3 and the current one)."""
    return request.param


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "terraform" in callspec.params:
            RELEASE_OF[item.nodeid] = callspec.params["terraform"].id


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    release_id = RELEASE_OF.get(report.nodeid)
    if release_id is not None and (report.when == "call" or report.skipped or report.failed):
        counts = OUTCOMES.setdefault(release_id, {})
        counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not OUTCOMES:
        return
    terminalreporter.section("Terraform releases covered")
    for release in RELEASES:
        counts = OUTCOMES.get(release.id, {})
        tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no tests run"
        if release.missing:
            terminalreporter.write_line(
                f"NOT COVERED: Terraform {release.label}: {release.missing} ({tally})", red=True, bold=True
            )
        elif counts.get("failed"):
            terminalreporter.write_line(f"Terraform {release.version}: {tally}", red=True, bold=True)
        elif counts.get("passed"):
            terminalreporter.write_line(
                f"Terraform {release.version} ({release.binary}): {tally}", green=True
            )
        else:
            terminalreporter.write_line(
                f"NOT COVERED: Terraform {release.version}: {tally}", yellow=True, bold=True
            )


@pytest.fixture(scope="session")
def terraform_home(
    terraform: Release, shim: Shim, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A fresh HOME with the plugin in Terraform's implied mirror, and one `terraform init`'d template."""
    home = tmp_path_factory.mktemp(f"home-{terraform.id}")
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
    rc, out, err = Terraform(working_dir=str(template), terraform_bin_path=terraform.binary).init(
        no_color=IsFlagged, input=False
    )
    assert rc == 0, out + err
    yield template
    patch.undo()


@pytest.fixture
def workspace(terraform: Release, terraform_home: Path, tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, terraform_home, terraform)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names, so tests sharing the shim never collide."""
    return uuid.uuid4().hex[:8]
