"""Installs the plugin in Terraform's implied local mirror, so `terraform init` resolves the provider."""

from __future__ import annotations

import compileall
import os
import platform
import sys
import sysconfig
from pathlib import Path

from contract.files import write_atomic

HOSTNAME = "registry.terraform.io"
NAMESPACE = "cloudbackup"
TYPE = "cloudbackup"
ROOT = Path(__file__).resolve().parents[2]
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386"}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("cloudbackup")
    except PackageNotFoundError:
        return "0.1.0"


def target_platform() -> str:
    return f"{platform.system().lower()}_{_ARCH.get(platform.machine().lower(), platform.machine().lower())}"


def default_plugin_dir() -> Path:
    return Path.home() / ".terraform.d" / "plugins"


# The environment variable naming the file that says which Python runs the plugin, and that file's default.
LAUNCHER_ENV = "CLOUDBACKUP_PLUGIN_LAUNCHER"
PYTHON_ENV = "CLOUDBACKUP_PLUGIN_PYTHON"

# What Terraform runs: the same bytes on every machine, so that `.terraform.lock.hcl` checksums made
# against one installation hold for every other installation of the same version. It names no path of
# this machine; it looks for the Python that has cloudbackup, in this order:
#   1. $CLOUDBACKUP_PLUGIN_PYTHON, an interpreter that can import cloudbackup's `provider` package;
#   2. the launcher `cloudbackup provider install` wrote outside the package directory:
#      $CLOUDBACKUP_PLUGIN_LAUNCHER, else ${XDG_CONFIG_HOME:-$HOME/.config}/cloudbackup/plugin-launcher;
#   3. python3 on PATH.
PLUGIN = """#!/bin/sh
# terraform-provider-cloudbackup, written by `cloudbackup provider install`. Which Python runs it:
# docs/plugin-runtime.md ("Installing the plugin").
run='import sys
try:
    from provider.runtime.main import main
except ImportError:
    sys.stderr.write("terraform-provider-cloudbackup: this Python (%s) does not have cloudbackup; run "
        "`cloudbackup provider install` with the Python that has it, or set CLOUDBACKUP_PLUGIN_PYTHON\\n"
        % sys.executable)
    sys.exit(1)
sys.exit(main())'
if [ -n "$CLOUDBACKUP_PLUGIN_PYTHON" ]; then
    exec "$CLOUDBACKUP_PLUGIN_PYTHON" -E -c "$run" "$@"
fi
launcher="${CLOUDBACKUP_PLUGIN_LAUNCHER:-${XDG_CONFIG_HOME:-$HOME/.config}/cloudbackup/plugin-launcher}"
if [ -x "$launcher" ]; then
    exec "$launcher" "$@"
fi
exec python3 -E -c "$run" "$@"
"""


def launcher_path() -> Path:
    """Where install records which Python runs the plugin (outside the checksummed package)."""
    explicit = os.environ.get(LAUNCHER_ENV)
    if explicit:
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "cloudbackup" / "plugin-launcher"


def launcher_script(python: str | None = None) -> str:
    """This machine's launcher: this venv's python without site (-S: fast start) and environment (-E)."""
    paths = [str(ROOT)]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return (
        f"#!{python or sys.executable} -SE\n"
        f'"""Runs terraform-provider-cloudbackup; written by `cloudbackup provider install`."""\n'
        f"import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        f"from provider.runtime.main import main\n"
        f"sys.exit(main())\n"
    )


def _write(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, content.encode(), mode=mode)


def install(plugin_dir: Path | None = None, python: str | None = None) -> Path:
    """Write the plugin into `plugin_dir` (default ~/.terraform.d/plugins) in the unpacked mirror layout,
    and record which Python runs it (`python`, default this one) in the launcher outside that directory."""
    plugin_dir = Path(plugin_dir) if plugin_dir is not None else default_plugin_dir()
    release = version()
    target = plugin_dir / HOSTNAME / NAMESPACE / TYPE / release / target_platform()
    executable = target / f"terraform-provider-{TYPE}_v{release}"
    _write(executable, PLUGIN, 0o755)
    _write(launcher_path(), launcher_script(python), 0o755)
    # Byte-compile what the plugin imports, so no start compiles (PYTHONDONTWRITEBYTECODE may be set).
    for package in ("provider", "contract"):
        compileall.compile_dir(ROOT / package, quiet=1)
    from provider.runtime import schema_cache, tls

    tls.certificate()
    schema_cache.build()
    return executable


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="cloudbackup provider install", description=install.__doc__)
    parser.add_argument(
        "--dir", type=Path, default=None, help="plugin directory (default ~/.terraform.d/plugins)"
    )
    args = parser.parse_args(argv)
    print(install(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
