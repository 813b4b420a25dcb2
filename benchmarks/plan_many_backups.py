"""`terraform plan` of 100 cloudbackup_cluster_backup resources (no changes), divided by the plan of one."""

from __future__ import annotations

import sys

import requests
from requests.auth import HTTPDigestAuth
from tf_harness import PROVIDER_BLOCK, environment, interleaved_medians, terraform, workdir

TARGET = 2.0
MANY = 100


def config(project_id: str, count: int) -> str:
    return (
        PROVIDER_BLOCK
        + f"""
resource "cloudbackup_cluster_backup" "b" {{
  count        = {count}
  project_id   = "{project_id}"
  cluster_name = "db-${{count.index}}"
}}
"""
    )


def main(repeats: int = 5) -> None:
    with environment() as bench:
        env, keys = bench["env"], bench["keys"]
        api = requests.Session()
        api.auth = HTTPDigestAuth(keys["publicKey"], keys["privateKey"])
        base = f"{bench['url']}/api/atlas/v1.0"
        projects = []
        for name in ("one", "many"):
            project_id = api.post(f"{base}/groups", json={"name": f"bench-{name}"}).json()["id"]
            projects.append(project_id)
            for index in range(1 if name == "one" else MANY):
                body = {
                    "name": f"db-{index}",
                    "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
                    "replicationSpecs": [
                        {"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 1}}}
                    ],
                    "diskSizeGB": 1,
                }
                api.post(f"{base}/groups/{project_id}/clusters", json=body).raise_for_status()
        one = workdir(bench["tmp"], "one", config(projects[0], 1), env)
        many = workdir(bench["tmp"], "many", config(projects[1], MANY), env)
        for path in (one, many):
            terraform(env, path, "apply", "-auto-approve", "-input=false")
            check = terraform(env, path, "plan", "-detailed-exitcode", "-input=false")
            assert check.returncode == 0, check.stdout + check.stderr
        plan = ("plan", "-input=false", "-lock=false")
        cold = {**env, "CLOUDBACKUP_PLUGIN_DAEMON": "0"}
        times = interleaved_medians(
            {
                "one": lambda: terraform(env, one, *plan),
                "many": lambda: terraform(env, many, *plan),
                "one cold": lambda: terraform(cold, one, *plan),
                "many cold": lambda: terraform(cold, many, *plan),
            },
            repeats,
        )
    results = [("", times["one"], times["many"])]
    results.append((" without the zygote", times["one cold"], times["many cold"]))
    print(f"terraform plan with no changes, median of {repeats} taken in turns:")
    for label, single, hundred in results:
        ratio = hundred / single
        print(f"  1 cloudbackup_cluster_backup{label}: {single * 1000:7.0f} ms")
        print(f"  {MANY} backups{label}: {hundred * 1000:7.0f} ms   ratio {ratio:.2f}, target {TARGET}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
