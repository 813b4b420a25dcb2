"""`terraform plan` of examples/quickstart with no changes, divided by the plan of an empty configuration."""

from __future__ import annotations

import sys

from tf_harness import copy_example, environment, interleaved_medians, terraform, workdir

TARGET = 3.0
EMPTY = "empty configuration"


def main(repeats: int = 7) -> None:
    with environment() as bench:
        env = bench["env"]
        empty = workdir(bench["tmp"], "empty", "terraform {}\n", env)
        quickstart = copy_example("quickstart", bench["tmp"] / "quickstart")
        terraform(env, quickstart, "init", "-input=false")
        terraform(env, quickstart, "apply", "-auto-approve", "-input=false")
        check = terraform(env, quickstart, "plan", "-detailed-exitcode", "-input=false")
        assert check.returncode == 0, check.stdout + check.stderr
        plan = ("plan", "-input=false", "-lock=false")
        variants = {
            "examples/quickstart, no changes": env,
            "  without the zygote (DAEMON=0)": {**env, "CLOUDBACKUP_PLUGIN_DAEMON": "0"},
            "  with TF_DISABLE_PLUGIN_TLS=1": {**env, "TF_DISABLE_PLUGIN_TLS": "1"},
            "  both": {**env, "CLOUDBACKUP_PLUGIN_DAEMON": "0", "TF_DISABLE_PLUGIN_TLS": "1"},
        }
        runs = {EMPTY: lambda: terraform(env, empty, *plan)}
        runs.update({label: lambda v=v: terraform(v, quickstart, *plan) for label, v in variants.items()})
        times = interleaved_medians(runs, repeats)
    base = times.pop(EMPTY)
    print(f"terraform plan, median of {repeats} taken in turns:")
    print(f"  {EMPTY:34} {base * 1000:6.0f} ms")
    for label, seconds in times.items():
        print(f"  {label:34} {seconds * 1000:6.0f} ms   ratio {seconds / base:.2f}   target {TARGET}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
