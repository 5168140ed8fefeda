"""Check that the runtime installs from binary wheels alone on every platform and Python we ship.

    python scripts/check_wheels.py [--extra hnsw] [--platform TAG ...] [--jobs 2]

The runtime dependencies are ``[project].dependencies`` of ``pyproject.toml`` (no extra). For
each platform and CPython version, ``pip download --only-binary=:all:`` resolves the whole
dependency tree for that target, as pip on such a machine would, and refuses any source
distribution. A ``manylinux_2_N`` platform is a Linux with glibc 2.N: it also takes the wheels
of every older glibc. A table shows, per target, OK with the number of wheels and their size,
or FAIL with pip's last error line. ``--extra NAME`` also checks the runtime with that extra
(``hnsw`` fails everywhere: hnswlib ships no wheel). The exit status is 1 when any target fails.

All downloads share one pip cache (a temporary one unless ``--cache-dir``), so a wheel that
several targets need is fetched once.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli package is the same parser
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        raise SystemExit("on Python 3.10 this script needs tomli: pip install tomli") from None

ROOT = Path(__file__).resolve().parent.parent
#: The oldest systems that today's wheels of every dependency cover: Linux with glibc 2.28
#: (RHEL 8, Debian 10, Ubuntu 20.04 and later), macOS 13 on Apple silicon, 64-bit Windows.
#: glibc 2.17 (manylinux2014) and macOS 11 fail: see docs/ann.md.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "macosx_13_0_arm64", "win_amd64")
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
MANYLINUX = re.compile(r"manylinux_2_(\d+)_(\w+)")


@dataclass(frozen=True)
class Target:
    """One pip download: a set of requirements for one platform and Python version."""

    label: str
    requirements: tuple[str, ...]
    platform: str
    python: str


@dataclass(frozen=True)
class Outcome:
    """What pip downloaded for a target, or why it could not."""

    target: Target
    ok: bool
    wheels: int
    megabytes: float
    seconds: float
    error: str


def requirement_sets(pyproject: Path, extras: list[str]) -> dict[str, tuple[str, ...]]:
    """The runtime dependencies, and the runtime with each of ``extras``, by label."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    runtime = tuple(project["dependencies"])
    sets = {"runtime": runtime}
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"no extra {extra!r} in {pyproject} (extras: {', '.join(optional)})")
        sets[f"runtime + {extra}"] = runtime + tuple(optional[extra])
    return sets


def pip_platforms(platform: str) -> list[str]:
    """The ``--platform`` options for one system: a ``manylinux_2_N`` system also takes the
    wheels of every older glibc, as pip running there does (pip itself widens a macOS version
    and the legacy ``manylinux2014`` tag)."""
    match = MANYLINUX.fullmatch(platform)
    if match is None:
        return ["--platform", platform]
    minor, arch = int(match[1]), match[2]
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 16, -1)] + [f"manylinux2014_{arch}"]
    return [option for tag in tags for option in ("--platform", tag)]


def last_error_line(output: str) -> str:
    """pip's last ``ERROR:`` line (or its last line when none)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["pip failed without output"])[-1]


def download(target: Target, work: Path, cache: Path) -> Outcome:
    """Run ``pip download --only-binary=:all:`` for ``target`` into a folder of its own."""
    dest = work / f"{target.label.replace(' + ', '+')}-{target.platform}-{target.python}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        *pip_platforms(target.platform),
        "--python-version",
        target.python,
        "--implementation",
        "cp",
        "--cache-dir",
        str(cache),
        "--disable-pip-version-check",
        "-d",
        str(dest),
        *target.requirements,
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    files = list(dest.glob("*.whl")) if dest.is_dir() else []
    ok = result.returncode == 0
    error = "" if ok else last_error_line(result.stdout + result.stderr)
    megabytes = sum(f.stat().st_size for f in files) / 1e6
    return Outcome(target, ok, len(files), megabytes, seconds, error)


def cell(outcome: Outcome) -> str:
    """A table cell: OK with wheels and size, or FAIL."""
    if outcome.ok:
        return f"OK {outcome.wheels} wheels {outcome.megabytes:.0f} MB"
    return "FAIL"


def print_table(label: str, outcomes: list[Outcome], platforms: list[str]) -> None:
    """Platform x Python for one requirement set, then each failure's error line."""
    by_target = {(o.target.platform, o.target.python): o for o in outcomes}
    width = max(len(cell(o)) for o in outcomes) + 2
    print(f"\n{label}: {', '.join(outcomes[0].target.requirements)}")
    header = "".join(f"{'cp' + v.replace('.', ''):<{width}}" for v in PYTHONS)
    print(f"{'platform':<24}{header}".rstrip())
    for platform in platforms:
        cells = "".join(f"{cell(by_target[platform, v]):<{width}}" for v in PYTHONS)
        print(f"{platform:<24}{cells}".rstrip())
    for o in outcomes:
        if not o.ok:
            print(f"  FAIL {o.target.platform} cp{o.target.python.replace('.', '')}: {o.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument(
        "--extra", action="append", default=[], help="Also check the runtime with this extra."
    )
    parser.add_argument(
        "--platform",
        action="append",
        help=f"Platform to check instead of the defaults (repeatable; {', '.join(PLATFORMS)}).",
    )
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=2, help="pip runs at once.")
    parser.add_argument(
        "--cache-dir", type=Path, help="pip cache to share (default: a temporary one)."
    )
    args = parser.parse_args()

    sets = requirement_sets(args.pyproject, args.extra)
    platforms = args.platform or list(PLATFORMS)
    pip_version = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout.split(" from ")[0]
    print(f"{pip_version}, --only-binary=:all: --implementation cp")
    targets = [
        Target(label, requirements, platform, python)
        for label, requirements in sets.items()
        for platform in platforms
        for python in PYTHONS
    ]
    with tempfile.TemporaryDirectory(prefix="check-wheels-") as tmp:
        work = Path(tmp)
        cache = args.cache_dir or work / "cache"
        outcomes = []
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            runs = [pool.submit(download, target, work, cache) for target in targets]
            for number, run in enumerate(runs, 1):
                outcome = run.result()
                outcomes.append(outcome)
                t = outcome.target
                print(
                    f"[{number}/{len(targets)}] {t.label}, {t.platform}, cp{t.python}: "
                    f"{cell(outcome)} ({outcome.seconds:.0f} s)",
                    flush=True,
                )
    for label in sets:
        print_table(label, [o for o in outcomes if o.target.label == label], platforms)
    failed = sum(not o.ok for o in outcomes)
    print(f"\n{len(outcomes) - failed} of {len(outcomes)} targets install from wheels alone")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
