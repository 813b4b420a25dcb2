"""Failures are safe: a wrong URL or key never empties the state, and a failed apply never blocks destroy."""

from __future__ import annotations

import json
import re
import subprocess

import hcl
import pytest
from tfkit import Shim, Workspace, console_script

pytestmark = pytest.mark.acceptance


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def applied(shim: Shim, workspace: Workspace, name: str) -> tuple[str, dict]:
    """A project, a backed-up cluster and an on-demand snapshot, applied; (config, state addresses)."""
    config = hcl.project(name) + hcl.cluster("kept") + hcl.backup() + hcl.snapshot("safe")
    workspace.write(config)
    workspace.apply()
    return config, workspace.state()


def project_key(shim: Shim, project_id: str) -> dict[str, str]:
    created = subprocess.run(
        [
            console_script("cloudbackup"),
            "keys",
            "create",
            "--data-dir",
            str(shim.data_dir),
            "--project",
            project_id,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    pair = json.loads(created.stdout)
    return {"CLOUDBACKUP_PUBLIC_KEY": pair["publicKey"], "CLOUDBACKUP_PRIVATE_KEY": pair["privateKey"]}


def test_a_url_that_repeats_the_api_base_path_fails_refresh_and_keeps_every_resource_in_state(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    _, before = applied(shim, workspace, f"url-{unique}")
    doubled = shim.url + "/api/atlas/v1.0"
    refresh = workspace.run("refresh", "-input=false", env={"CLOUDBACKUP_URL": doubled})
    assert refresh.returncode != 0, refresh.stdout + refresh.stderr
    text = one_line(refresh.stderr)
    assert "already contains the base path /api/atlas/v1.0" in text
    assert f"Set url (or CLOUDBACKUP_URL) to {shim.url}." in text
    assert text.count("Error:") == 1
    assert workspace.state() == before
    workspace.destroy()


def test_a_url_that_is_not_a_cloudbackup_api_fails_the_plan_naming_url(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    _, before = applied(shim, workspace, f"elsewhere-{unique}")
    plan = workspace.run("plan", "-input=false", env={"CLOUDBACKUP_URL": shim.url + "/somewhere"})
    assert plan.returncode != 0
    text = one_line(plan.stderr)
    assert "is not a cloudbackup API" in text and "CLOUDBACKUP_URL" in text
    assert workspace.state() == before
    workspace.destroy()


def test_a_key_of_another_project_fails_refresh_naming_the_key_and_keeps_every_resource_in_state(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    _, before = applied(shim, workspace, f"key-{unique}")
    other = shim.create_project(f"other-{unique}")
    refresh = workspace.run("refresh", "-input=false", env=project_key(shim, other))
    assert refresh.returncode != 0, refresh.stdout + refresh.stderr
    text = one_line(refresh.stderr)
    assert "The API key cannot reach this project" in text
    assert "public_key and private_key" in text and other in text
    assert workspace.state() == before
    workspace.destroy()


def test_a_key_of_the_managed_project_refreshes_as_usual(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    _, before = applied(shim, workspace, f"ownkey-{unique}")
    project_id = before["cloudbackup_project.p"]["id"]
    # The project resource itself is read with the project's own key; only creating projects needs more.
    refresh = workspace.run("refresh", "-input=false", env=project_key(shim, project_id))
    assert refresh.returncode == 0, refresh.stderr
    assert workspace.state().keys() == before.keys()
    workspace.destroy()


def test_a_backup_refused_at_apply_does_not_block_destroying_what_was_created(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    # The tier is known only once the project exists, so the plan passes and the shim refuses at apply.
    tier = '"M${length(cloudbackup_project.p.id) > 0 ? 2 : 10}"'
    config = hcl.project(f"late-{unique}") + hcl.cluster("tiny").replace('"M10"', tier) + hcl.backup()
    workspace.write(config)
    apply = workspace.run("apply", "-auto-approve", "-input=false")
    assert apply.returncode != 0 and "not available for M2" in one_line(apply.stderr), apply.stderr
    assert set(workspace.state()) == {"cloudbackup_project.p", "cloudbackup_cluster.c"}
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    workspace.destroy()
    assert workspace.state() == {}
    assert shim.request("GET", f"/groups/{project_id}").status_code == 404


def test_destroying_resources_already_deleted_outside_terraform_succeeds(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    _, before = applied(shim, workspace, f"gone-{unique}")
    project_id = before["cloudbackup_project.p"]["id"]
    shim.call("DELETE", f"/groups/{project_id}/clusters/kept")
    destroy = workspace.run("destroy", "-auto-approve", "-input=false", "-refresh=false")
    assert destroy.returncode == 0, destroy.stderr
    assert workspace.state() == {}
    assert shim.request("GET", f"/groups/{project_id}").status_code == 404


def test_a_project_key_planning_a_new_project_fails_the_plan_naming_the_key(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    scoped = project_key(shim, shim.create_project(f"scoped-{unique}"))
    workspace.write(hcl.project(f"wanted-{unique}"))
    plan = workspace.run("plan", "-input=false", env=scoped)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    text = one_line(plan.stderr)
    assert "Creating a project needs an organization API key" in text and "public_key and private_key" in text
