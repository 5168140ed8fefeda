"""Benchmark end-to-end `classify` throughput against raw onnxruntime on the same model.

End to end: :func:`snca_cli.tasks.classify.classify_raster` on a generated, tiled,
DEFLATE-compressed
GeoTIFF (windowed reads in the prefetch thread, scaling, batching, the model, the
GeoPackage + GeoJSON outputs). Raw: ``session.run`` of the same onnxruntime session on batches
already in memory, as many tiles in batches of the same size. The ratio raw time / end-to-end
time is the share of the model's own throughput the pipeline keeps (target >= 0.9); each run
pairs one end-to-end and one raw measurement taken back to back. Wall-clock and CPU time (all
threads of the process) are both reported: on a machine shared with other work the wall-clock
ratio is noisy, the CPU ratio measures the work the pipeline adds to the model's.

    python benchmarks/classify_throughput.py --size 8960 --batch-size 32 --repeats 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from conv_model import make_conv_model
from synthetic_raster import write_synthetic_raster

from snca_cli.contract.metadata import INPUT_NAME
from snca_cli.contract.tiling import TilingOptions
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.classify import classify_raster


@dataclass
class Timing:
    """Wall-clock and CPU seconds (all threads of this process) of one measurement."""

    wall: float
    cpu: float


@contextmanager
def timed(results: list[Timing]) -> Iterator[None]:
    """Append the wall and process CPU time of the ``with`` body to ``results``."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    results.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))


def run_raw(model: OnnxModel, tiles: int, batch_size: int) -> None:
    """onnxruntime alone: ``tiles`` tiles in batches of ``batch_size`` already in memory."""
    meta = model.metadata
    rng = np.random.default_rng(0)
    full = rng.random((batch_size, meta.input_bands, meta.tile_size, meta.tile_size), np.float32)
    last = full[: tiles % batch_size or batch_size]
    batches = math.ceil(tiles / batch_size)
    for i in range(batches):
        model.session.run(None, {INPUT_NAME: last if i == batches - 1 else full})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8960, help="Raster side in pixels.")
    parser.add_argument("--model", type=Path, help="An snca ONNX model [default: conv model].")
    parser.add_argument("--tile-size", type=int, default=224, help="Tile of the conv model.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="snca-bench-") as folder:
        work = Path(folder)
        model_path = args.model or make_conv_model(work / "conv.onnx", tile_size=args.tile_size)
        model = OnnxModel(model_path, threads=args.threads)
        t0 = time.perf_counter()
        raster = write_synthetic_raster(work / "raster.tif", args.size)
        print(
            f"raster {args.size} x {args.size} x 3 uint8, DEFLATE 512 blocks, "
            f"{raster.stat().st_size / 1e6:.0f} MB ({time.perf_counter() - t0:.1f} s to write); "
            f"model {model_path.name}, {model.metadata.tile_size} px tiles, "
            f"batch {args.batch_size}, provider {model.provider_name}"
        )
        run_raw(model, args.batch_size, args.batch_size)  # warm-up
        end_to_end: list[Timing] = []
        raw: list[Timing] = []
        tiles = 0
        for repeat in range(args.repeats):
            if repeat % 2:  # alternate the order so that drifting load hits both sides alike
                with timed(raw):
                    run_raw(model, tiles, args.batch_size)
            with timed(end_to_end):
                summary = classify_raster(
                    raster,
                    model,
                    work / f"out{repeat}.gpkg",
                    TilingOptions(),
                    batch_size=args.batch_size,
                )
            tiles = summary.tiles_classified
            if not repeat % 2:
                with timed(raw):
                    run_raw(model, tiles, args.batch_size)
            e2e, base = end_to_end[-1], raw[-1]
            print(
                f"run {repeat + 1} ({tiles} tiles): end-to-end {e2e.wall:.2f} s wall, "
                f"{e2e.cpu:.2f} s CPU; raw {base.wall:.2f} s wall, {base.cpu:.2f} s CPU; "
                f"ratio wall {base.wall / e2e.wall:.3f}, CPU {base.cpu / e2e.cpu:.3f}"
            )
    for kind in ("wall", "cpu"):
        e2e_s = statistics.median(getattr(t, kind) for t in end_to_end)
        raw_s = statistics.median(getattr(t, kind) for t in raw)
        paired = statistics.median(
            getattr(r, kind) / getattr(e, kind) for r, e in zip(raw, end_to_end, strict=True)
        )
        print(
            f"{kind.upper()}: median end-to-end {e2e_s:.2f} s ({tiles / e2e_s:.1f} tiles/s), "
            f"raw {raw_s:.2f} s ({tiles / raw_s:.1f} tiles/s); end-to-end / raw throughput "
            f"{raw_s / e2e_s:.3f} (median of paired runs {paired:.3f}; target >= 0.9)"
        )


if __name__ == "__main__":
    main()
