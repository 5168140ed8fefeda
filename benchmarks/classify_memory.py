"""Benchmark peak memory of `snca classify` on a 5,000^2 and a 20,000^2 raster.

Each raster is generated window by window (3-band uint8, tiled 512 px blocks, DEFLATE); each
classify runs in a fresh subprocess through the real command line (GeoPackage, GeoJSON and
class-map COG outputs) and its peak resident memory is read with ``os.wait4`` (``ru_maxrss``
of that child alone). The baseline, measured the same way, is a subprocess that only imports
snca and loads the model. Targets: every peak < 1 GB, the largest raster's peak within 1.2x
of the smallest's.

    python benchmarks/classify_memory.py --sizes 5000 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conv_model import make_conv_model
from synthetic_raster import write_synthetic_raster

LOAD_ONLY = (
    "from snca_cli.runtime.onnx_model import OnnxModel; import snca_cli.tasks.classify; "
    "OnnxModel({!r})"
)


#: Runs ``argv[2:]``, waits for it with ``os.wait4`` and writes its peak RSS (kB), wall and CPU
#: seconds as JSON to ``argv[1]``; exits with its status. On Linux a child's ``ru_maxrss`` never
#: falls below the peak RSS of the process that started it (the exec carries the parent's
#: high-water mark over), so this small process starts the measured one, not the benchmark.
LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
figures = {"peak_kb": usage.ru_maxrss, "wall_s": time.perf_counter() - start,
           "cpu_s": usage.ru_utime + usage.ru_stime}
with open(sys.argv[1], "w") as out:
    json.dump(figures, out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured_run(
    command: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[float, float, float]:
    """Run ``command`` (in ``env`` and ``cwd`` when given), its output in ``log``; return its
    peak RSS in MB, its wall time and its CPU time (user + system, all threads) in seconds."""
    usage = log.with_name(f"{log.name}.usage.json")
    with open(log, "w") as output:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(usage), *command],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{log.read_text()}")
    figures = json.loads(usage.read_text())
    return figures["peak_kb"] / 1024.0, figures["wall_s"], figures["cpu_s"]


def peak_rss_mb(
    command: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[float, float]:
    """Run ``command`` (in ``env`` and ``cwd`` when given); return its peak RSS in MB and its
    wall time in seconds."""
    peak, wall, _ = measured_run(command, log, env, cwd)
    return peak, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--model", type=Path, help="An snca ONNX model [default: conv model].")
    parser.add_argument(
        "--width", type=float, default=0.125, help="Channel width of the generated conv model."
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, help="Where rasters go [default: a temp folder].")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="snca-bench-", dir=args.workdir) as folder:
        work = Path(folder)
        model = args.model or make_conv_model(work / "conv.onnx", width=args.width)
        baseline, _ = peak_rss_mb(
            [sys.executable, "-c", LOAD_ONLY.format(str(model))], work / "load.log"
        )
        print(f"baseline (import snca, load {model.name}): peak RSS {baseline:.0f} MB")
        peaks = []
        for size in args.sizes:
            t0 = time.perf_counter()
            raster = write_synthetic_raster(work / f"raster_{size}.tif", size)
            written = time.perf_counter() - t0
            command = [
                sys.executable,
                "-m",
                "snca_cli.cli",
                "classify",
                str(raster),
                "--model",
                str(model),
                "--output",
                str(work / f"tiles_{size}.gpkg"),
                "--class-map",
                str(work / f"classes_{size}.tif"),
                "--batch-size",
                str(args.batch_size),
            ]
            peak, seconds = peak_rss_mb(command, work / f"classify_{size}.log")
            peaks.append(peak)
            print(
                f"{size:>6} x {size} px ({raster.stat().st_size / 1e6:,.0f} MB on disk, "
                f"{written:.0f} s to write): classify peak RSS {peak:,.0f} MB in {seconds:.0f} s"
            )
            raster.unlink()
    print(
        f"largest / smallest peak: {peaks[-1] / peaks[0]:.3f} (target <= 1.2); "
        f"max peak {max(peaks):,.0f} MB (target < 1024)"
    )


if __name__ == "__main__":
    main()
