"""Whether the Terraform that started this plugin is running a destroy."""

from __future__ import annotations

import functools
import os

# Terraform's global options that take their value as the next argument are written -opt=value,
# so the first argument without a leading dash is the subcommand.
DESTROY_FLAGS = ("-destroy", "-destroy=true", "--destroy")


def is_destroy(argv: list[str]) -> bool:
    """`terraform destroy`, or `terraform apply -destroy` / `plan -destroy`, from Terraform's arguments."""
    rest = argv[1:]
    command = next((arg for arg in rest if not arg.startswith("-")), None)
    if command == "destroy":
        return True
    return command in ("apply", "plan") and any(arg in DESTROY_FLAGS for arg in rest)


@functools.cache
def terraform_destroys() -> bool:
    """Read from Terraform's command line: before a destroy, Terraform (1.0 to 1.2 at least) plans the
    whole configuration to refresh the state, and says nothing to the provider about what follows.
    Rule checks of resources still to create would then fail the destroy, so they are skipped."""
    terraform = os.environ.get("CLOUDBACKUP_TERRAFORM_PID") or str(os.getppid())
    try:
        with open(f"/proc/{terraform}/cmdline", "rb") as cmdline:
            argv = [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except OSError:
        return False
    return is_destroy(argv)
