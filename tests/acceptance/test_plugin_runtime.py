"""The plugin as Terraform runs it: every start, warm or cold, sees that run's environment."""

from __future__ import annotations

import hcl
import pytest
from tfkit import Workspace

from provider import zygote

pytestmark = pytest.mark.acceptance


@pytest.mark.parametrize("daemon", ["1", "0"], ids=["warm", "cold"])
def test_each_run_configures_the_provider_from_its_own_environment(
    workspace: Workspace, unique: str, daemon: str
) -> None:
    workspace.write(hcl.project(f"env-{unique}"))
    asked = {zygote.DAEMON_ENV: daemon}
    first = workspace.run("plan", "-input=false", env=asked)
    assert first.returncode == 0, first.stderr
    wrong = workspace.run("plan", "-input=false", env={**asked, "CLOUDBACKUP_PRIVATE_KEY": "not-the-key"})
    assert wrong.returncode == 1
    assert "Configuring the provider" in wrong.stderr, wrong.stderr
    missing = workspace.run("plan", "-input=false", env={**asked, "CLOUDBACKUP_PUBLIC_KEY": ""})
    assert missing.returncode == 1 and "Missing cloudbackup API key" in missing.stderr, missing.stderr
    again = workspace.run("plan", "-input=false", env=asked)
    assert again.returncode == 0, again.stderr
