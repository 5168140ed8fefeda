"""Profile `snca classify` on this CPU: the model's cost, the CPU's peak, where a tile's time
goes, batch sizes and threads, and the fraction of the CPU's peak the model reaches.

1. **Cost**: multiply-accumulates per tile of every Conv and Gemm of each model
   (:mod:`model_flops`), by kind; FLOPs = 2 x MACs.
2. **Peak**: the CPU's model and vector extensions; the theoretical FMA peak per core
   (FMA units x fp32 lanes per unit x 2 FLOP x the clock /proc/cpuinfo reports; int8 with VNNI:
   4 products per 32-bit lane, so 4x the fp32 rate) and the achievable peak measured with
   onnxruntime: a fp32 ``MatMul`` and a u8 x s8 ``MatMulInteger`` of each ``--gemm`` size
   cubed, on 1 and 2 intra-op threads; the fastest (the least disturbed run on shared cores).
3. **Where a tile's time goes** on a real raster: a mosaic of the model card's AID test scenes
   (``--grid`` x ``--grid`` scenes of 150 px, 2 m pixels, DEFLATE; ``write_real_mosaic``).
   Alone, each part per tile: GDAL's windowed read of a tile (decode), the value scaling
   (``ValueScaling.apply``), ``RasterTiling.read_into`` (both, plus the validity check), the
   same through a WarpedVRT at 0.75x the pixel size (resample: that minus scale and the decoding
   of the source pixels it covers), the tile stream (``embed_raster``) with the model replaced
   by a stub (batch assembly and hand-over: that minus ``read_into``), and ``OnnxModel.run`` on
   batches of 32 in memory (the session). Then in place: ``classify_raster`` (in this process,
   GeoPackage + GeoJSON + class map) with those functions and the writers timed inside the
   run; and the real command line (``python -m snca_cli.cli classify``, a fresh process:
   start-up and model loading included), ``--threads`` 0 (onnxruntime's default), 1 and 2.
   The sum of the parts against end to end: less means reading overlapped the model.
4. **Batch size and threads**: ``session.run`` per tile for each batch size on 1 and 2
   intra-op threads, each model.
5. **Fraction of peak**: FLOPs per tile x tiles/s / peak, for the raw session and end to end.
6. **Per operator**: onnxruntime's profiler at batch 32, node time grouped (convolutions by
   kind with the GFLOP/s each reaches, layout reorders, Pad, quantize / dequantize, ...).

Every time is the median of ``--repeats`` repeats.

    python benchmarks/classify_profile.py --data $SNCA_SHARED_DATA/aid150 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from unittest import mock

import numpy as np
import onnx
import rasterio
from classify_memory import peak_rss_mb
from classify_throughput import Timing, timed
from classify_vs_revision import CLASSIFIED, cpu_flags
from model_flops import LayerCost, layer_costs, macs_by_kind, operator_times
from mosaic_check import PIXEL_METRES, scene_pixels, write_mosaic
from onnx import TensorProto, helper
from rasterio.windows import Window

import snca_cli.tasks.classify as classify_module
from snca_cli.contract.metadata import INPUT_NAME
from snca_cli.contract.tiling import TilingOptions
from snca_cli.runtime.default_model import default_model_path
from snca_cli.runtime.onnx_model import SESSION_CONFIG, ModelOutputs, OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.tile_stream import embed_raster
from snca_cli.tasks.classify import classify_raster

Key = TypeVar("Key", bound=Hashable)

#: The runtime's batch size (``snca classify --batch-size``'s default).
DEFAULT_BATCH = 32
#: Side of an aid150 scene and of a tile of the shipped model, in pixels.
SCENE_PIXELS = 150
#: Pixel size of the resampled reads, as a fraction of the raster's.
RESAMPLE_FACTOR = 0.75
#: What the in-place run times, by part: the functions timed (owner, attribute).
IN_PLACE_PARTS: dict[str, list[tuple[object, str]]] = {
    "read_into (reader thread)": [(RasterTiling, "read_into")],
    "session (OnnxModel.run)": [(OnnxModel, "run")],
    "GeoPackage": [(classify_module, "write_polygons"), (classify_module, "write_layer_styles")],
    "GeoJSON": [(classify_module, "write_geojson_wgs84")],
    "class map": [(classify_module, "write_class_map"), (classify_module, "write_class_pam")],
}
WRITES = ("GeoPackage", "GeoJSON", "class map")


def times_of(action: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of each of ``repeats`` calls of ``action``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


# -- the CPU ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    """What /proc/cpuinfo says about the processor."""

    model: str
    vendor: str
    family: int
    mhz: float  # the highest clock any core reports
    flags: str  # the vector extensions that matter (cpu_flags)

    @classmethod
    def read(cls) -> Cpu:
        """This machine's processor (empty fields where /proc/cpuinfo is missing)."""
        fields: dict[str, list[str]] = {}
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), []).append(value.strip())
        except OSError:
            pass
        mhz = max((float(v) for v in fields.get("cpu MHz", [])), default=0.0)
        return cls(
            model=fields.get("model name", ["unknown"])[0],
            vendor=fields.get("vendor_id", [""])[0],
            family=int(fields.get("cpu family", ["0"])[0] or 0),
            mhz=mhz,
            flags=cpu_flags(),
        )

    def fp32_lanes(self) -> int:
        """fp32 lanes of one FMA unit: 8 on AMD Zen 3 and 4 (family 25: AVX-512 runs on
        256-bit units), 16 with AVX-512 elsewhere, 8 with AVX2."""
        if self.vendor == "AuthenticAMD" and self.family == 25:
            return 8
        return 16 if "avx512f" in self.flags else 8

    def int8_factor(self) -> int:
        """int8 products per fp32 FMA lane and cycle: 4 with VNNI (``vpdpbusd``), 2 without."""
        return 4 if "vnni" in self.flags else 2

    def peak_flops(self, fma_units: int, cores: int, int8: bool = False) -> float:
        """Theoretical operations per second of ``cores`` cores (multiply and add count 2)."""
        per_cycle = fma_units * self.fp32_lanes() * 2 * (self.int8_factor() if int8 else 1)
        return per_cycle * self.mhz * 1e6 * cores


def matmul_model(size: int, int8: bool) -> bytes:
    """A one-node model: ``A @ B`` of two ``size`` x ``size`` matrices, fp32 ``MatMul`` or
    u8 x s8 ``MatMulInteger``."""
    kinds = (
        (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32)
        if int8
        else (TensorProto.FLOAT,) * 3
    )
    node = helper.make_node("MatMulInteger" if int8 else "MatMul", ["A", "B"], ["Y"])
    graph = helper.make_graph(
        [node],
        "gemm",
        [
            helper.make_tensor_value_info(n, k, [size, size])
            for n, k in zip("AB", kinds[:2], strict=True)
        ],
        [helper.make_tensor_value_info("Y", kinds[2], [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def gemm_session(model: bytes, threads: int):  # noqa: ANN201 (onnxruntime's type)
    """An onnxruntime CPU session of a GEMM model, made like the runtime's (its config
    entries)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def gemm_rate(size: int, int8: bool, threads: int, repeats: int) -> tuple[float, float]:
    """Operations per second of onnxruntime's GEMM (``2 x size^3`` per run): the best and the
    median of ``repeats`` runs after a warm-up run."""
    runner = gemm_session(matmul_model(size, int8), threads)
    rng = np.random.default_rng(0)
    if int8:
        a = rng.integers(0, 256, (size, size), dtype=np.uint8)
        b = rng.integers(-128, 128, (size, size), dtype=np.int8)
    else:
        a, b = rng.random((size, size), np.float32), rng.random((size, size), np.float32)
    feeds = {"A": a, "B": b}
    runner.run(None, feeds)
    times = times_of(lambda: runner.run(None, feeds), repeats)
    operations = 2.0 * size**3
    return operations / min(times), operations / statistics.median(times)


# -- the raster ------------------------------------------------------------------------------


def write_real_mosaic(aid_dir: Path, path: Path, grid: int = 44) -> list[str]:
    """Write the first ``grid`` x ``grid`` AID test scenes of the shipped model's card as one
    georeferenced GeoTIFF (:func:`mosaic_check.write_mosaic`: 150 px cells, 2 m pixels,
    DEFLATE); return the scenes, row by row."""
    card = default_model_path().with_suffix(".card.json")
    scenes = json.loads(card.read_text())["split"]["test"][: grid * grid]
    if len(scenes) < grid * grid:
        raise SystemExit(f"the card's test split has {len(scenes)} scenes, fewer than {grid}^2")
    cells = (scene_pixels(aid_dir / scene, SCENE_PIXELS) for scene in scenes)
    write_mosaic(path, cells, len(scenes), SCENE_PIXELS)
    return scenes


# -- the parts, alone ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadSplit:
    """Seconds per tile of the reading parts, each alone."""

    decode: float  # GDAL's windowed read of a tile's pixels
    scale: float  # ValueScaling.apply into a float32 tile
    read_into: float  # RasterTiling.read_into: both, plus validity
    resampled_read_into: float  # the same through a WarpedVRT at RESAMPLE_FACTOR x the pixel
    stream: float  # embed_raster with a stub model: read_into + batches + hand-over

    @property
    def resample(self) -> float:
        """The WarpedVRT's own share: the resampled read less scaling and the decoding of the
        source pixels a resampled tile covers (``RESAMPLE_FACTOR^2`` of a native tile's)."""
        return self.resampled_read_into - self.scale - RESAMPLE_FACTOR**2 * self.decode

    @property
    def assembly(self) -> float:
        """Batch assembly and hand-over to the model's thread: the stream less its reads."""
        return self.stream - self.read_into


class NoModel:
    """Stands in for an :class:`OnnxModel` in the tile stream: zero outputs at once, so that
    the stream's own cost shows."""

    def __init__(self, model: OnnxModel) -> None:
        self.metadata = model.metadata

    def run(self, images: np.ndarray) -> ModelOutputs:
        """Zero embeddings and probabilities for ``images``."""
        meta = self.metadata
        return ModelOutputs(
            np.zeros((len(images), meta.embedding_dim), np.float32),
            np.zeros((len(images), meta.num_classes), np.float32),
        )


def decode_and_scale(raster: Path, model: OnnxModel) -> tuple[float, float, int]:
    """Seconds spent decoding the tiles' windows (GDAL, under the tiling's block-cache cap)
    and scaling them, over the whole grid; and the number of tiles."""
    decode = scale = 0.0
    with (
        RasterTiling.open(raster, model.metadata, native()) as tiling,
        rasterio.open(raster) as source,
    ):
        out = np.empty((len(tiling.bands), tiling.tile_size, tiling.tile_size), np.float32)
        for tile in tiling.tiles():
            started = time.perf_counter()
            raw = source.read(list(tiling.bands), window=Window(*tile.window))
            read = time.perf_counter()
            tiling.scaling.apply(raw, out)
            decode += read - started
            scale += time.perf_counter() - read
        return decode, scale, tiling.tile_count


def read_all(raster: Path, model: OnnxModel, options: TilingOptions) -> tuple[float, int]:
    """Seconds of ``RasterTiling.read_into`` over every tile of the grid, and the tiles."""
    with RasterTiling.open(raster, model.metadata, options) as tiling:
        out = np.empty((len(tiling.bands), tiling.tile_size, tiling.tile_size), np.float32)
        started = time.perf_counter()
        for tile in tiling.tiles():
            tiling.read_into(tile, out)
        return time.perf_counter() - started, tiling.tile_count


def stream_all(raster: Path, model: OnnxModel) -> tuple[float, int]:
    """Seconds of the tile stream over the raster with the model stubbed (from the raster
    opened to the last batch), and the tiles."""
    with embed_raster(raster, NoModel(model), native(), DEFAULT_BATCH) as run:  # type: ignore[arg-type]
        started = time.perf_counter()
        for _ in run:
            pass
        return time.perf_counter() - started, run.stats.embedded


def read_split(raster: Path, model: OnnxModel, repeats: int) -> ReadSplit:
    """The reading parts per tile, medians of ``repeats`` passes over the raster."""
    parts: dict[str, list[float]] = {name: [] for name in ("decode", "scale", "read", "vrt")}
    streams = []
    resampled = TilingOptions(resolution=RESAMPLE_FACTOR * PIXEL_METRES, overlap=0)
    for _ in range(repeats):
        decode, scale, tiles = decode_and_scale(raster, model)
        parts["decode"].append(decode / tiles)
        parts["scale"].append(scale / tiles)
        seconds, tiles = read_all(raster, model, native())
        parts["read"].append(seconds / tiles)
        seconds, tiles = read_all(raster, model, resampled)
        parts["vrt"].append(seconds / tiles)
        seconds, tiles = stream_all(raster, model)
        streams.append(seconds / tiles)
    median = {name: statistics.median(values) for name, values in parts.items()}
    return ReadSplit(
        median["decode"], median["scale"], median["read"], median["vrt"], statistics.median(streams)
    )


def native() -> TilingOptions:
    """The tiling of the profile: the raster's own pixels, no overlap (one tile per scene)."""
    return TilingOptions(resolution="native", overlap=0)


def interleaved_per_tile(
    runs: dict[Key, tuple[Callable[[np.ndarray], object], np.ndarray]], tiles: int, repeats: int
) -> dict[Key, Timing]:
    """Median wall and CPU seconds per tile of each ``run`` on its ``batch`` (in memory),
    about ``tiles`` tiles a pass; after a warm-up run each, the passes take turns ``repeats``
    times, so that the load of other jobs drifts over all of them alike."""
    batches = {key: max(1, round(tiles / len(batch))) for key, (_, batch) in runs.items()}
    for run, batch in runs.values():
        run(batch)
    passes: dict[Key, list[Timing]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, (run, batch) in runs.items():
            with timed(passes[key]):
                for _ in range(batches[key]):
                    run(batch)
    return {
        key: per_tile(passes[key], batches[key] * len(batch)) for key, (_, batch) in runs.items()
    }


def per_tile(passes: list[Timing], tiles: int) -> Timing:
    """The median wall and CPU seconds of ``passes`` of ``tiles`` tiles, per tile."""
    return Timing(
        statistics.median(t.wall for t in passes) / tiles,
        statistics.median(t.cpu for t in passes) / tiles,
    )


def unit_batch(model: OnnxModel, size: int) -> np.ndarray:
    """A batch of ``size`` random tiles in [0, 1] for ``model``."""
    meta = model.metadata
    shape = (size, meta.input_bands, meta.tile_size, meta.tile_size)
    return np.random.default_rng(0).random(shape, np.float32)


# -- in place --------------------------------------------------------------------------------


@contextmanager
def timed_parts(parts: dict[str, list[tuple[object, str]]]) -> Iterator[Counter[str]]:
    """Within the block, every function of ``parts`` adds its seconds to its part's count."""
    spent: Counter[str] = Counter()

    def timer(original: Callable[..., object], part: str) -> Callable[..., object]:
        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - started

        return timed

    with ExitStack() as stack:
        for part, places in parts.items():
            for owner, name in places:
                patched = timer(getattr(owner, name), part)
                stack.enter_context(mock.patch.object(owner, name, patched))
        yield spent


def in_place(
    raster: Path, models: dict[str, OnnxModel], work: Path, repeats: int
) -> dict[str, dict[str, float]]:
    """Seconds per tile of ``classify_raster`` (GeoPackage, GeoJSON, class map): wall
    (``total``), CPU of the process (``cpu``) and of the timed parts inside it
    (:data:`IN_PLACE_PARTS`), by model label; medians of ``repeats`` runs, the models taking
    turns."""
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in models}
    for _ in range(repeats):
        for label, model in models.items():
            whole: list[Timing] = []
            with timed_parts(IN_PLACE_PARTS) as spent, timed(whole):
                summary = classify_raster(
                    raster,
                    model,
                    work / "in_place.gpkg",
                    native(),
                    class_map=work / "in_place_classes.tif",
                    force=True,
                )
            tiles = summary.tiles_classified
            parts = {part: seconds / tiles for part, seconds in spent.items()}
            runs[label].append(
                {"total": whole[0].wall / tiles, "cpu": whole[0].cpu / tiles, **parts}
            )
    return {
        label: {key: statistics.median(run[key] for run in values) for key in values[0]}
        for label, values in runs.items()
    }


def cli_run(raster: Path, model: Path, work: Path, options: Sequence[str]) -> tuple[int, float]:
    """Classified tiles and wall seconds of one ``snca classify`` with ``options`` in a fresh
    process (start-up, model loading and every output included)."""
    out = work / "cli"
    out.mkdir(exist_ok=True)
    command = [
        sys.executable, "-m", "snca_cli.cli", "classify", str(raster), "--model", str(model),
        "-o", str(out / "tiles.gpkg"), "--class-map", str(out / "classes.tif"),
        "--force", *options,
    ]  # fmt: skip
    log = work / "cli.log"
    _, seconds = peak_rss_mb(command, log, env={**os.environ, "COLUMNS": "200"})
    found = CLASSIFIED.findall(log.read_text())
    if not found:
        raise SystemExit(f"no tile count in the output of snca classify:\n{log.read_text()}")
    return int(found[-1].replace(",", "")), seconds


# -- the sections ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    """Seconds as milliseconds, 3 decimals."""
    return f"{seconds * 1e3:.3f} ms"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(title)
    for row in [header, *rows]:
        cells = [cell.ljust(width) if i == 0 else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        print("  " + "  ".join(cells))


def model_costs(models: dict[str, Path]) -> dict[str, list[LayerCost]]:
    """Print and return the layer costs of each model (by label)."""
    print("\n== 1. The model's cost per tile (batch 1; FLOPs = 2 x MACs)")
    costs = {label: layer_costs(path) for label, path in models.items()}
    for label, layers in costs.items():
        convs = [c for c in layers if c.op_type == "Conv"]
        total = sum(c.macs for c in layers)
        print(
            f"{label}: {total / 1e6:.1f} MMAC = {2 * total / 1e9:.3f} GFLOP per tile; "
            f"convolutions {sum(c.macs for c in convs) / 1e6:.1f} MMAC in {len(convs)} Conv nodes"
        )
        for kind, macs in macs_by_kind(layers).items():
            print(f"  {kind:<16} {macs / 1e6:8.2f} MMAC  {100 * macs / total:5.1f} %")
    return costs


def cpu_peaks(
    cpu: Cpu, fma_units: int, sizes: Sequence[int], repeats: int
) -> dict[bool, tuple[float, float]]:
    """Print the theoretical and measured peaks; return the 2-core (measured, theoretical)
    operations per second, fp32 (False) and int8 (True). Measured: the fastest GEMM over
    ``sizes`` and the repeats; for 2 cores the 2-thread GEMM's or twice the 1-thread one's,
    whichever is higher (on shared cores a neighbour's work slows the 2-thread run)."""
    print("\n== 2. The CPU's peak")
    theory = {int8: cpu.peak_flops(fma_units, 1, int8) for int8 in (False, True)}
    print(
        f"theoretical, fp32: {fma_units} FMA units x {cpu.fp32_lanes()} lanes x 2 FLOP x "
        f"{cpu.mhz / 1e3:.2f} GHz = {theory[False] / 1e9:.1f} GFLOP/s per core, "
        f"{2 * theory[False] / 1e9:.1f} on 2 cores; int8 (x{cpu.int8_factor()} with VNNI): "
        f"{theory[True] / 1e9:.1f} GOP/s per core, {2 * theory[True] / 1e9:.1f} on 2"
    )
    settings = [(int8, threads) for int8 in (False, True) for threads in (1, 2)]
    rates = {
        (int8, threads, size): gemm_rate(size, int8, threads, repeats)
        for int8, threads in settings
        for size in sizes
    }
    print_table(
        f"measured: onnxruntime MatMul fp32 and MatMulInteger u8 x s8, n^3, G(FL)OP/s, best "
        f"(median) of {repeats}:",
        ["n", *(f"{'int8' if i else 'fp32'} {t} thr" for i, t in settings)],
        [
            [str(size), *(f"{rates[i, t, size][0] / 1e9:.1f} ({rates[i, t, size][1] / 1e9:.1f})"
                          for i, t in settings)]
            for size in sizes
        ],
    )  # fmt: skip
    best = {(i, t): max(rates[i, t, size][0] for size in sizes) for i, t in settings}
    per_cycle = theory[False] / (cpu.mhz * 1e6)
    print(
        f"the best 1-thread fp32 GEMM ({best[False, 1] / 1e9:.1f} GFLOP/s) at {per_cycle:.0f} "
        f"FLOP per cycle means a clock of {best[False, 1] / per_cycle / 1e9:.2f} GHz"
    )
    peaks = {}
    for int8 in (False, True):
        measured = max(best[int8, 2], 2 * best[int8, 1])
        peaks[int8] = (measured, 2 * theory[int8])
        print(
            f"peak used, 2 cores, {'int8' if int8 else 'fp32'}: {measured / 1e9:.1f} "
            f"G{'OP' if int8 else 'FLOP'}/s ({100 * measured / (2 * theory[int8]):.0f} % of the "
            "theoretical)"
        )
    return peaks


def batch_table(
    models: dict[str, Path], batches: Sequence[int], tiles: int, repeats: int
) -> dict[tuple[str, int, int], float]:
    """Print and return session seconds per tile by (model label, threads, batch size)."""
    print("\n== 3. Batch size and threads: session.run per tile (batches in memory)")
    runs = {}
    for label, path in models.items():
        for threads in (1, 2):
            model = OnnxModel(path, threads=threads)

            def run(batch: np.ndarray, runner=model.session) -> object:  # noqa: ANN001
                return runner.run(None, {INPUT_NAME: batch})

            for size in batches:
                runs[label, threads, size] = (run, unit_batch(model, size))
    raw = {key: t.wall for key, t in interleaved_per_tile(runs, tiles, repeats).items()}
    header = ["batch", *(f"{label} {t} thr" for label in models for t in (1, 2))]
    rows = [
        [str(b), *(f"{1 / raw[label, t, b]:.1f}" for label in models for t in (1, 2))]
        for b in batches
    ]
    print_table("tiles/s:", header, rows)
    for label in models:
        best = best_setting(raw, label)
        default = raw[label, 2, DEFAULT_BATCH]
        print(
            f"{label}: best batch {best[2]} on {best[1]} thread(s), {1 / raw[best]:.1f} tiles/s;"
            f" the default (batch {DEFAULT_BATCH}, 2 threads) {1 / default:.1f} tiles/s "
            f"({raw[best] / default:.2f}x the best's speed)"
        )
    return raw


def best_setting(raw: dict[tuple[str, int, int], float], label: str) -> tuple[str, int, int]:
    """The key (label, threads, batch) of a model's fastest setting in the batch table."""
    return min((key for key in raw if key[0] == label), key=raw.__getitem__)


def time_split(
    raster: Path, models: dict[str, OnnxModel], work: Path, tiles: int, repeats: int
) -> tuple[dict[str, Timing], dict[str, dict[str, float]]]:
    """Print the parts alone and in place; return, by model, the session's seconds per tile
    alone (batch 32, default threads) and the in-place seconds per tile (:func:`in_place`)."""
    any_model = next(iter(models.values()))
    reads = read_split(raster, any_model, repeats)
    batch = unit_batch(any_model, DEFAULT_BATCH)
    alone = interleaved_per_tile(
        {label: (m.run, batch) for label, m in models.items()}, tiles, repeats
    )
    rows = [
        ["decode (GDAL windowed read)", ms(reads.decode)],
        ["scale (ValueScaling.apply)", ms(reads.scale)],
        ["RasterTiling.read_into (decode + validity + scale)", ms(reads.read_into)],
        [f"resample (WarpedVRT at {RESAMPLE_FACTOR:g}x the pixel; derived)", ms(reads.resample)],
        ["batch assembly + hand-over (tile stream - read_into)", ms(reads.assembly)],
        *([f"session {label} (OnnxModel.run, batch {DEFAULT_BATCH})", ms(timing.wall)]
          for label, timing in alone.items()),
    ]  # fmt: skip
    print_table("alone, per tile:", ["part", "time"], rows)
    placed = in_place(raster, models, work, repeats)
    parts = [*IN_PLACE_PARTS]
    rows = [[part, *(ms(p[part]) for p in placed.values())] for part in parts]
    rows.append([
        "main thread otherwise (plan, open, wait on the reader, tile table)",
        *(ms(p["total"] - sum(p[part] for part in parts[1:])) for p in placed.values()),
    ])  # fmt: skip
    rows.append(
        ["sum of the timed parts", *(ms(sum(p[k] for k in parts)) for p in placed.values())]
    )
    rows.append(["classify_raster end to end (wall)", *(ms(p["total"]) for p in placed.values())])
    print_table(
        "in place (classify_raster, batch 32), per classified tile:", ["part", *placed], rows
    )
    for label, part in placed.items():
        writes = sum(part[w] for w in WRITES)
        serial = reads.stream + alone[label].wall + writes
        print(
            f"{label}: parts alone in series (stream {ms(reads.stream)} + session "
            f"{ms(alone[label].wall)} + writes {ms(writes)}) {ms(serial)} per tile; end to end "
            f"{ms(part['total'])}: {part['total'] / serial:.2f}x the sum"
        )
    return alone, placed


def cli_table(
    rasters: tuple[Path, Path],
    models: dict[str, Path],
    raw: dict[tuple[str, int, int], float],
    work: Path,
    repeats: int,
) -> dict[tuple[str, str], float]:
    """Print and return the tiles/s of ``snca classify`` by (model label, options), on the
    mosaic and, for the fixed cost of a run, on ``rasters[1]`` (one tile); the runs take
    turns ``repeats`` times. Options: ``--threads`` 0 (the default), 1 and 2; the best setting
    of the batch table; the default threads with the best batch size on 2 threads."""
    mosaic, one_tile = rasters
    resolution = f"{RESAMPLE_FACTOR * PIXEL_METRES:g}"
    settings: dict[tuple[str, str], tuple[Path, Path]] = {}
    for label, path in models.items():
        _, threads, batch = best_setting(raw, label)
        two_threads = min(
            (b for k, t, b in raw if (k, t) == (label, 2)), key=lambda b: raw[label, 2, b]
        )
        settings[label, "one tile"] = (path, one_tile)
        for options in (
            *(f"--threads {t}" for t in (0, 1, 2)),
            f"--threads {threads} --batch-size {batch}",
            f"--threads 0 --batch-size {two_threads}",
            *([f"--threads 0 --resolution {resolution}"] if path == next(iter(models.values()))
              else []),
        ):  # fmt: skip
            settings[label, options] = (path, mosaic)
    runs: dict[tuple[str, str], list[tuple[int, float]]] = {key: [] for key in settings}
    for _ in range(repeats):
        for (label, options), (path, raster) in settings.items():
            flags = [] if options == "one tile" else options.split()
            runs[label, options].append(cli_run(raster, path, work, flags))
    seconds = {key: statistics.median(s for _, s in values) for key, values in runs.items()}
    tiles = {key: values[0][0] for key, values in runs.items()}
    rows = []
    for label, options in settings:
        fixed = seconds[label, "one tile"]
        key = label, options
        per_tile = (seconds[key] - fixed) / tiles[key] if options != "one tile" else 0.0
        rows.append([
            f"{label} {options}", f"{tiles[key]:,}", f"{seconds[key]:.2f} s",
            f"{tiles[key] / seconds[key]:.1f}", ms(per_tile) if per_tile else "",
        ])  # fmt: skip
    print_table(
        f"snca classify, a fresh process, every output (batch {DEFAULT_BATCH} unless said):",
        ["run", "tiles", "wall", "tiles/s", "per tile past the fixed cost"],
        rows,
    )
    return {key: tiles[key] / seconds[key] for key in settings}


def peak_table(
    flops: dict[str, float],
    peaks: dict[bool, tuple[float, float]],
    runs: dict[str, dict[str, tuple[float, float | None]]],
) -> None:
    """FLOPs per tile x tiles/s of each run against the 2-core peaks, and FLOPs per CPU
    second against one core's measured peak (what the run makes of the CPU time it gets).
    ``runs``: by model label and run, wall and CPU seconds per tile (None: not measured)."""
    rows = []
    for label, timings in runs.items():
        measured, theoretical = peaks["int8" in label]
        for name, (wall, cpu) in timings.items():
            rate = flops[label] / wall
            per_cpu = "" if cpu is None else f"{100 * flops[label] / cpu / (measured / 2):.1f} %"
            rows.append([
                f"{label}: {name}", f"{1 / wall:.1f}", f"{rate / 1e9:.1f}",
                f"{100 * rate / measured:.1f} %", f"{100 * rate / theoretical:.1f} %", per_cpu,
            ])  # fmt: skip
    print("\n== 5. Fraction of the CPU's peak (int8: operations against the int8 peak)")
    print_table(
        "FLOPs per tile x tiles/s against 2 cores; per CPU second against 1 core:",
        ["run", "tiles/s", "G(FL)OP/s", "of measured", "of theoretical", "per CPU second"],
        rows,
    )


def operator_tables(
    models: dict[str, Path],
    costs: dict[str, list[LayerCost]],
    raw: dict[tuple[str, int, int], float],
    runs: int,
    folder: Path,
) -> None:
    """Per operator group, at the default batch and threads and at each model's best setting
    of the batch table: time per tile, share, and the G(FL)OP/s of each convolution kind."""
    print("\n== 6. Per operator: onnxruntime's profiler")
    for label, path in models.items():
        kinds = macs_by_kind(costs[label])
        _, best_threads, best_batch = best_setting(raw, label)
        for size, threads in dict.fromkeys([(DEFAULT_BATCH, 0), (best_batch, best_threads)]):
            batch = unit_batch(OnnxModel(path), size)
            times = operator_times(SESSION_CONFIG, path, costs[label], batch, runs, threads, folder)
            total = sum(times.values())
            rows = []
            for group, seconds in times.items():
                if seconds < 0.001 * total:
                    continue
                kind = group.removeprefix("conv ")
                row = [group, ms(seconds / size), f"{100 * seconds / total:.1f} %", "", ""]
                if kind in kinds:
                    row[3] = f"{100 * kinds[kind] / sum(kinds.values()):.1f} %"
                    row[4] = f"{2 * kinds[kind] * size / seconds / 1e9:.1f}"
                rows.append(row)
            print_table(
                f"{label}, batch {size}, {threads or 'default'} thread(s): "
                f"{ms(total / size)} per tile in the profiled nodes",
                ["group", "per tile", "of time", "of MACs", "G(FL)OP/s"],
                rows,
            )


def main() -> None:
    shared = os.environ.get("SNCA_SHARED_DATA")
    fp32 = default_model_path()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(shared) / "aid150" if shared else None,
        help="The AID scene folder [default: $SNCA_SHARED_DATA/aid150].",
    )
    parser.add_argument("--grid", type=int, default=44, help="Scenes per side of the mosaic.")
    parser.add_argument(
        "--models", type=Path, nargs="+", default=[fp32, fp32.with_suffix(".int8.onnx")]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-repeats", type=int, default=5, help="Passes of the batch table.")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32, 64, 128])
    parser.add_argument("--session-tiles", type=int, default=256, help="Tiles per session time.")
    parser.add_argument(
        "--gemm", type=int, nargs="+", default=[512, 1024, 2048], help="Sides of the peak GEMMs."
    )
    parser.add_argument("--gemm-repeats", type=int, default=10, help="Runs of each GEMM.")
    parser.add_argument("--fma-units", type=int, default=2, help="FMA units per core.")
    parser.add_argument("--profile-runs", type=int, default=5, help="Batches profiled.")
    args = parser.parse_args()
    if args.data is None:
        parser.error("--data is required when SNCA_SHARED_DATA is not set")

    import onnxruntime

    cpu = Cpu.read()
    print(
        f"CPU: {cpu.model}, {os.cpu_count()} cores, {cpu.flags}; {cpu.mhz:.0f} MHz (/proc/cpuinfo)"
    )
    print(f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (other jobs on the cores)")
    paths = {path.stem.removeprefix(fp32.stem).lstrip(".") or "fp32": path for path in args.models}
    costs = model_costs(paths)
    flops = {label: 2.0 * sum(c.macs for c in layers) for label, layers in costs.items()}
    peaks = cpu_peaks(cpu, args.fma_units, args.gemm, args.gemm_repeats)
    raw = batch_table(paths, args.batches, args.session_tiles, args.batch_repeats)
    with tempfile.TemporaryDirectory(prefix="snca-profile-") as folder:
        work = Path(folder)
        raster = work / "mosaic.tif"
        started = time.perf_counter()
        scenes = write_real_mosaic(args.data, raster, args.grid)
        side = args.grid * SCENE_PIXELS
        print(
            f"\n== 4. Where a tile's time goes: {len(scenes):,} AID test scenes as a {side:,} x "
            f"{side:,} px GeoTIFF ({PIXEL_METRES:g} m pixels, DEFLATE, "
            f"{raster.stat().st_size / 1e6:.0f} MB, written in {time.perf_counter() - started:.0f}"
            f" s); medians of {args.repeats}"
        )
        models = {label: OnnxModel(path) for label, path in paths.items()}
        alone, placed = time_split(raster, models, work, args.session_tiles, args.repeats)
        one_tile = work / "one_scene.tif"
        write_real_mosaic(args.data, one_tile, grid=1)
        cli = cli_table((raster, one_tile), paths, raw, work, args.repeats)
        timings = {
            label: {
                "session, best of the batch table": (raw[best_setting(raw, label)], None),
                f"session alone, batch {DEFAULT_BATCH}, default threads": (
                    alone[label].wall,
                    alone[label].cpu,
                ),
                "classify_raster in this process": (placed[label]["total"], placed[label]["cpu"]),
                "snca classify, default settings": (1 / cli[label, "--threads 0"], None),
            }
            for label in paths
        }
        peak_table(flops, peaks, timings)
        operator_tables(paths, costs, raw, args.profile_runs, work)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
