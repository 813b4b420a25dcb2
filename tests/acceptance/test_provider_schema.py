"""The checked-in provider-schema/provider.json is what Terraform itself reports for the installed plugin."""

from __future__ import annotations

import json

import pytest
from tfkit import Workspace

from provider.schema import PROVIDER_JSON

pytestmark = pytest.mark.acceptance


def test_terraform_providers_schema_prints_the_checked_in_provider_json(workspace: Workspace) -> None:
    workspace.write("")
    result = workspace.run("providers", "schema", "-json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    checked_in = json.loads(PROVIDER_JSON.read_text())
    # Each Terraform release stamps its own format_version (0.2 on 1.0, 1.0 since 1.1); the schemas are
    # the same document.
    assert printed.keys() == checked_in.keys()
    assert printed["provider_schemas"] == checked_in["provider_schemas"], (
        "provider-schema/provider.json differs from what `terraform providers schema -json` prints for the "
        f"installed plugin under Terraform {workspace.release.version}: run `python -m provider.docs` and "
        "check the generator"
    )
