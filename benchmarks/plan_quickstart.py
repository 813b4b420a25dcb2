"""`terraform plan` of examples/quickstart with no changes, divided by the plan of an empty configuration."""

from __future__ import annotations

import sys

from tf_harness import copy_example, environment, median_seconds, terraform, workdir

TARGET = 3.0


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
        terraform(env, quickstart, *plan)
        base = median_seconds(lambda: terraform(env, empty, *plan), repeats)
        full = median_seconds(lambda: terraform(env, quickstart, *plan), repeats)
        notls_env = {**env, "TF_DISABLE_PLUGIN_TLS": "1"}
        notls = median_seconds(lambda: terraform(notls_env, quickstart, *plan), repeats)
    print(f"terraform plan, median of {repeats}:")
    print(f"  empty configuration:               {base * 1000:7.0f} ms")
    print(
        f"  examples/quickstart, no changes: {full * 1000:7.0f} ms  ratio {full / base:.2f}, target {TARGET}"
    )
    print(f"  the same with TF_DISABLE_PLUGIN_TLS: {notls * 1000:5.0f} ms   ratio {notls / base:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
