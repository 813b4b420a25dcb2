"""`terraform plan` (no change) of one backed-up cluster, divided by the plan of one Go `null_resource`.

One backed-up cluster is a project, a cluster and its backup policy. The anchor is the `null` provider
2.1.2 (a Go binary, see tf_harness). Both plans run in turns in one run, under the current Terraform
and under 1.0.3. Target: ratio <= 1.0.
"""

from __future__ import annotations

import sys

from tf_harness import (
    PROVIDER_BLOCK,
    VERSIONS,
    environment,
    interleaved_medians,
    terraform,
    terraform_version,
    use_terraform,
    workdir,
)

TARGET = 1.0
NULL = 'terraform {\n  required_providers {\n    null = { source = "hashicorp/null" }\n  }\n}\n'
NULL_RESOURCES = NULL + 'resource "null_resource" "n" {\n  count = {count}\n}\n'


def backed_up(count: int, name: str) -> str:
    """A project with `count` clusters, each with its backup policy."""
    return (
        PROVIDER_BLOCK
        + f"""
resource "cloudbackup_project" "p" {{
  name = "{name}"
}}

resource "cloudbackup_cluster" "c" {{
  count         = {count}
  project_id    = cloudbackup_project.p.id
  name          = "db-${{count.index}}"
  provider_name = "AZURE"
  instance_size = "M10"
  region {{
    name     = "eastus2"
    priority = 7
  }}
}}

resource "cloudbackup_cluster_backup" "b" {{
  count        = {count}
  project_id   = cloudbackup_project.p.id
  cluster_name = cloudbackup_cluster.c[count.index].name
}}
"""
    )


def prepare(bench: dict, version: str, label: str, config: str) -> object:
    """A workdir with `config` applied under `version`; a run of its plan with no change."""
    env = bench["env"]
    use_terraform(version)
    path = workdir(bench["tmp"], f"{version}-{label}", config, env)
    terraform(env, path, "apply", "-auto-approve", "-input=false")
    check = terraform(env, path, "plan", "-detailed-exitcode", "-input=false")
    assert check.returncode == 0, check.stdout + check.stderr

    def run() -> None:
        use_terraform(version)
        terraform(env, path, "plan", "-input=false", "-lock=false")

    return run


def main(repeats: int = 9) -> None:
    with environment() as bench:
        for version in VERSIONS:
            runs = {
                "1 null_resource": prepare(bench, version, "null", NULL_RESOURCES.replace("{count}", "1")),
                "1 backed-up cluster": prepare(bench, version, "one", backed_up(1, f"quick-{version}")),
            }
            times = interleaved_medians(runs, repeats)
            base, ours = times["1 null_resource"], times["1 backed-up cluster"]
            print(f"terraform {terraform_version(version)} plan, no change, median of {repeats} in turns:")
            print(f"  1 null_resource (Go null 2.1.2)   {base * 1000:6.0f} ms")
            print(
                f"  1 backed-up cluster (3 resources) {ours * 1000:6.0f} ms   ratio {ours / base:.2f}"
                f"   target {TARGET}"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
