"""`terraform plan` (no change) of 100 backed-up clusters, against 100 Go `null_resource`s and against one.

A backed-up cluster is a cluster and its backup policy, all in one project (201 resources for 100). Taken
in turns in one run, under the current Terraform and under 1.0.3. Targets: 100 backed-up clusters ÷
100 null_resources <= 1.5; 100 backed-up clusters ÷ 1 <= 2.
"""

from __future__ import annotations

import sys

from plan_quickstart import NULL_RESOURCES, backed_up, prepare
from tf_harness import VERSIONS, environment, interleaved_medians, terraform_version

MANY = 100
TARGET_NULL = 1.5
TARGET_ONE = 2.0


def main(repeats: int = 5) -> None:
    with environment() as bench:
        for version in VERSIONS:
            runs = {
                "null": prepare(bench, version, "null-many", NULL_RESOURCES.replace("{count}", str(MANY))),
                "one": prepare(bench, version, "one", backed_up(1, f"one-{version}")),
                "many": prepare(bench, version, "many", backed_up(MANY, f"many-{version}")),
            }
            times = interleaved_medians(runs, repeats)
            null, one, many = times["null"], times["one"], times["many"]
            print(f"terraform {terraform_version(version)} plan, no change, median of {repeats} in turns:")
            print(f"  {MANY} null_resources (Go null 2.1.2)  {null * 1000:7.0f} ms")
            print(f"  1 backed-up cluster              {one * 1000:7.0f} ms")
            print(f"  {MANY} backed-up clusters           {many * 1000:7.0f} ms")
            print(f"  {MANY} backed-up ÷ {MANY} null_resources: {many / null:.2f}   target {TARGET_NULL}")
            print(f"  {MANY} backed-up ÷ 1 backed-up:        {many / one:.2f}   target {TARGET_ONE}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
