"""Benchmark `snca classify` of this checkout against an earlier revision, side by side.

Both run the real command line (``python -m snca_cli.cli classify``) on the same generated
DEFLATE-compressed GeoTIFF with the shipped model, in fresh processes, alternating (paired
runs: baseline, this checkout, baseline, ...), so drift of a shared machine hits both alike.
The baseline is a ``git worktree`` of ``--baseline`` (a commit, branch or tag) in a temporary
folder, put first on ``PYTHONPATH``; this checkout runs the same way from its own folder.
Printed per pair: tiles per second of the whole command (classified tiles / wall time, start-up
included) and peak RSS of each; then the medians and the ratios
this / baseline (throughput >= 0.97 and peak memory <= 1.03 mean "within 3 %").

    python benchmarks/classify_vs_revision.py --baseline 71eec61 --size 4500 --pairs 5
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from classify_memory import peak_rss_mb
from synthetic_raster import write_synthetic_raster

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIED = re.compile(r"([\d,]+) classified")


def cpu_flags() -> str:
    """The SIMD features that decide onnxruntime's kernels on this CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
    except (OSError, IndexError):
        return platform.processor() or "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    return " ".join(flag for flag in wanted if flag in flags) or "no AVX2"


def classify_once(
    code: Path, raster: Path, out: Path, log: Path, options: tuple[str, ...] = ()
) -> tuple[float, float]:
    """One `snca classify` run of the package in ``code``, with more command-line ``options``:
    (classified tiles per second of the whole command, start-up and model loading included;
    peak RSS in MB)."""
    command = [
        sys.executable,
        "-m",
        "snca_cli.cli",
        "classify",
        str(raster),
        "-o",
        str(out / "tiles.gpkg"),
        "--resolution",
        "native",
        "--force",
        *options,
    ]
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"}
    peak, seconds = peak_rss_mb(command, log, env=env, cwd=code)
    found = CLASSIFIED.findall(log.read_text())
    if not found:
        raise SystemExit(f"no tile count in the output of {code}:\n{log.read_text()}")
    return int(found[-1].replace(",", "")) / seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="A git revision to compare with.")
    parser.add_argument("--size", type=int, default=4500, help="Raster width = height in px.")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="snca-vs-revision-") as tmp:
        work = Path(tmp)
        baseline = work / "baseline"
        subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "worktree",
                "add",
                "--detach",
                "-q",
                str(baseline),
                args.baseline,
            ],
            check=True,
        )
        try:
            raster = write_synthetic_raster(work / "scene.tif", args.size)
            print(f"CPU: {platform.machine()}, {os.cpu_count()} cores, {cpu_flags()}")
            print(
                f"raster {args.size:,}^2 px (uint8, DEFLATE), shipped model, "
                f"{args.pairs} pairs; baseline {args.baseline}"
            )
            runs: dict[str, list[tuple[float, float]]] = {"baseline": [], "this": []}
            for pair in range(args.pairs):
                for name, code in (("baseline", baseline), ("this", ROOT)):
                    out = work / f"out_{name}"
                    out.mkdir(exist_ok=True)
                    runs[name].append(classify_once(code, raster, out, work / f"{name}_{pair}.log"))
                (b_speed, b_peak), (t_speed, t_peak) = runs["baseline"][-1], runs["this"][-1]
                print(
                    f"pair {pair + 1}: baseline {b_speed:7.1f} tiles/s {b_peak:6.0f} MB | "
                    f"this {t_speed:7.1f} tiles/s {t_peak:6.0f} MB"
                )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                check=False,
            )
    medians = {
        name: (statistics.median(s for s, _ in values), statistics.median(p for _, p in values))
        for name, values in runs.items()
    }
    speed_ratio = medians["this"][0] / medians["baseline"][0]
    memory_ratio = medians["this"][1] / medians["baseline"][1]
    print(f"median baseline: {medians['baseline'][0]:.1f} tiles/s, {medians['baseline'][1]:.0f} MB")
    print(f"median this:     {medians['this'][0]:.1f} tiles/s, {medians['this'][1]:.0f} MB")
    print(f"ratio this/baseline: throughput {speed_ratio:.3f}, peak memory {memory_ratio:.3f}")


if __name__ == "__main__":
    main()
