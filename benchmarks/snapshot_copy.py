"""Benchmark: a local snapshot (copy + checksum) of a 1 GiB volume against `cp` of the file, in one run."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shim.drivers.base import VolumeSpec
from shim.drivers.digest import content_digest, default_threads
from shim.drivers.local import LocalDriver

TARGET_RATIO = 0.9
CHUNK = 16 * 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="volume size (default 1024 MiB)")
    parser.add_argument("--repetitions", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary dir)")
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a snapshot without fsync, and cp followed by fsync, to show where the time goes",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudbackup-bench-", dir=args.dir))
    try:
        return run(work, args.size_mib * 1024 * 1024, args.repetitions, args.breakdown)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, size: int, repetitions: int, breakdown: bool) -> int:
    data_dir = work / "data"
    driver = LocalDriver(data_dir)
    fast_driver = LocalDriver(data_dir, durable=False)
    # size_gb is whole GiB; the benchmark's volume is then trimmed to the size asked for.
    handle = driver.create_volume(VolumeSpec("bench", "cluster", "bench", "eastus2", 0, max(1, size >> 30)))
    volume = data_dir / handle
    fill_random(volume, size)
    copy_target = volume.with_name("cp-copy.img")

    def time_cp(fsync: bool) -> float:
        started = time.perf_counter()
        subprocess.run(["cp", str(volume), str(copy_target)], check=True)
        if fsync:
            subprocess.run(["sync", str(copy_target)], check=True)
        elapsed = time.perf_counter() - started
        copy_target.unlink()
        return elapsed

    def time_checksum() -> float:
        started = time.perf_counter()
        content_digest(volume)
        return time.perf_counter() - started

    reflinked: list[bool] = []

    def time_snapshot(chosen: LocalDriver, number: int) -> float:
        snapshot_id = f"bench-{number}"
        started = time.perf_counter()
        token = chosen.start_snapshot(
            volume_handle=handle,
            region="eastus2",
            snapshot_id=snapshot_id,
            tags={"benchmark": "snapshot_copy"},
        )
        elapsed = time.perf_counter() - started
        status = chosen.poll(token)
        if status.state != "succeeded":
            raise SystemExit(f"snapshot failed: {status.error_code}: {status.error_message}")
        metadata = chosen.snapshot_metadata(str(status.result["handle"])) or {}
        reflinked.append(bool(metadata.get("reflinked")))
        chosen.delete_snapshot(str(status.result["handle"]))
        return elapsed

    variants: dict[str, Callable[[int], float]] = {
        "cp": lambda n: time_cp(fsync=False),
        "snapshot": lambda n: time_snapshot(driver, n),
    }
    if breakdown:
        variants["snapshot, no fsync"] = lambda n: time_snapshot(fast_driver, n)
        variants["cp + fsync"] = lambda n: time_cp(fsync=True)
        variants["checksum alone"] = lambda n: time_checksum()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(repetitions):
        # Alternate the order so neither side always runs on a cache the other one warmed.
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(variants[name](round_number * len(names) + names.index(name)))

    medians = {name: statistics.median(values) for name, values in times.items()}
    mib = size / (1024 * 1024)
    print(
        f"snapshot_copy: {mib:.0f} MiB of random data in {work} ({filesystem(work)}), "
        f"{repetitions} alternating rounds, every round kept, medians:"
    )
    for name, values in times.items():
        speed = mib / medians[name]
        runs = " ".join(f"{value:.2f}" for value in values)
        print(f"  {name:<20} {medians[name]:7.3f} s  {speed:7.0f} MiB/s   (runs: {runs})")
    ratio = medians["cp"] / medians["snapshot"]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"ratio snapshot speed / cp speed: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
    if any(reflinked):
        print("reflink used: yes (FICLONE; the checksum is then the whole cost)")
    else:
        print(f"reflink used: no ({filesystem(work)} refuses FICLONE; both sides copy with copy_file_range)")
    if breakdown:
        no_fsync = medians["cp"] / medians["snapshot, no fsync"]
        same_durability = medians["cp + fsync"] / medians["snapshot"]
        print("where the time goes (the snapshot fsyncs its copy before it reports success; cp does not):")
        print(f"  snapshot without fsync (copy + checksum) / cp:      {no_fsync:.2f}")
        print(f"  snapshot / cp followed by fsync of its copy:        {same_durability:.2f}")
        print(
            f"  the checksum alone (sha256-4m on {default_threads()} threads) takes "
            f"{medians['checksum alone'] / medians['cp']:.2f} x the time of cp"
        )
    return 0


def fill_random(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        for offset in range(0, size, CHUNK):
            os.pwrite(fd, os.urandom(min(CHUNK, size - offset)), offset)
        # On disk before timing starts, so no round pays for writing the source back.
        os.fsync(fd)
    finally:
        os.close(fd)


def filesystem(path: Path) -> str:
    """The type of the file system holding `path`, from /proc/mounts (Linux), else "unknown"."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    best = ("", "unknown")
    resolved = str(path.resolve())
    for fields in mounts:
        mount_point, fs_type = fields[1], fields[2]
        if (resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")) and len(
            mount_point
        ) > len(best[0]):
            best = (mount_point, fs_type)
    return best[1]


if __name__ == "__main__":
    sys.exit(main())
