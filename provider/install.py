"""Installs the plugin in Terraform's implied local mirror, so `terraform init` resolves the provider."""

from __future__ import annotations

import compileall
import os
import platform
import sys
import sysconfig
from pathlib import Path

HOSTNAME = "registry.terraform.io"
NAMESPACE = "cloudbackup"
TYPE = "cloudbackup"
ROOT = Path(__file__).resolve().parent.parent
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


def launcher_script() -> str:
    """A small script run by this venv's python without site (-S: fast start) and environment (-E)."""
    paths = [str(ROOT)]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return (
        f"#!{sys.executable} -SE\n"
        f'"""terraform-provider-cloudbackup, written by `cloudbackup provider install`."""\n'
        f"import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        f"from provider.main import main\n"
        f"sys.exit(main())\n"
    )


def install(plugin_dir: Path | None = None) -> Path:
    """Write the plugin into `plugin_dir` (default ~/.terraform.d/plugins) in the unpacked mirror layout."""
    plugin_dir = Path(plugin_dir) if plugin_dir is not None else default_plugin_dir()
    release = version()
    target = plugin_dir / HOSTNAME / NAMESPACE / TYPE / release / target_platform()
    target.mkdir(parents=True, exist_ok=True)
    executable = target / f"terraform-provider-{TYPE}_v{release}"
    tmp = executable.with_name(executable.name + ".tmp")
    tmp.write_text(launcher_script())
    tmp.chmod(0o755)
    os.replace(tmp, executable)
    # Byte-compile what the plugin imports, so no start compiles (PYTHONDONTWRITEBYTECODE may be set).
    for package in ("provider", "shim", "contract"):
        compileall.compile_dir(ROOT / package, quiet=1)
    from provider import schema_cache, tls

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
