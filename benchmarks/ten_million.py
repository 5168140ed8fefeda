"""The 10^7-tile run, measured: an index of 10,036,224 real-model embeddings built and searched.

The rasters are generated from real imagery: ``--atlases`` GeoTIFF atlases (default 16), each
all 10,000 AID scenes of 150 px in a seeded random order, each scene turned by a random one of
the 8 rotations and flips (100 x 100 cells, 15,000^2 px, JPEG in 512 px blocks); and
``--phases``^2 VRT windows of each atlas (default 8 x 8), shifted by 0-131 px, so that the
tiles of no two windows coincide: 16 x 64 = 1,024 rasters of 99 x 99 tiles. Nothing but the
atlases (~1 GB) is written for the pixels.

    python benchmarks/ten_million.py prepare DIR [--aid AID_DIR]
    python benchmarks/ten_million.py build DIR     # the same command resumes an interrupted run
    python benchmarks/ten_million.py measure DIR [--queries 1000] [--out docs/ten_million.json]

``prepare DIR --atlases 2`` makes the same run's first 128 rasters (1,254,528 tiles), which
this 2-core machine builds in about an hour (docs/scaling.md).

``build`` runs the real command line (``snca index build DIR/rasters.txt -o DIR/ten_million.index
--workers 2 --shard-size 2.5M``); its work units are kept in the work folder beside the index, so
a run stopped at any point (Ctrl-C, a lost machine) goes on from its finished units when the same
command is given again. Every invocation is appended to ``DIR/build_runs.jsonl`` (wall and CPU
seconds, peak RSS, units reused, whether it finished), so the build's cost adds up across
interruptions. ``measure`` times single-tile searches (p50/p99, by tile id through the same code
as ``snca search --tile-id``) and recall@10 against exact search over every embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from classify_memory import LAUNCHER  # noqa: E402

CELL = 150
CELLS = 100  # cells per atlas side: 100 x 100 = all 10,000 AID scenes
PIXEL_M = 0.5
#: Tiles per window side: a window leaves out one cell's width so that every shift fits.
WINDOW_CELLS = CELLS - 1
INDEX_NAME = "ten_million.index"
RASTER_LIST = "rasters.txt"
RUNS_LOG = "build_runs.jsonl"
#: Five shards (four of 2.5M tiles, one of 36,224): two workers build two graphs at once in 24 GiB.
SHARD_SIZE = "2.5M"
WORKERS = 2
#: Queries whose recall@10 is measured against exact search (each reads every embedding).
RECALL_QUERIES = 200


def aid_scenes(aid_dir: Path) -> list[Path]:
    """Every AID scene, class by class, name by name."""
    scenes = sorted(p for p in aid_dir.glob("*/*") if p.suffix.lower() in {".jpg", ".png", ".tif"})
    if len(scenes) < CELLS * CELLS:
        raise SystemExit(f"{aid_dir} holds {len(scenes)} scenes; an atlas needs {CELLS * CELLS}")
    return scenes[: CELLS * CELLS]


def load_scenes(scenes: list[Path]) -> np.ndarray:
    """The scenes as one N x 150 x 150 x 3 uint8 array."""
    from PIL import Image

    out = np.zeros((len(scenes), CELL, CELL, 3), np.uint8)
    for i, path in enumerate(scenes):
        out[i] = np.asarray(Image.open(path).convert("RGB").resize((CELL, CELL)))
    return out


def atlas_origin(number: int) -> tuple[float, float]:
    """Upper-left corner (EPSG:32633) of atlas ``number``: atlases lie 10 km apart."""
    return 400000.0 + 10000.0 * (number % 8), 5800000.0 - 10000.0 * (number // 8)


def write_atlas(path: Path, number: int, pixels: np.ndarray) -> None:
    """Atlas ``number``: every scene once, in a seeded order, each turned by a seeded one of the
    8 rotations/flips; written to a temporary name, then renamed."""
    import rasterio
    from affine import Affine

    rng = random.Random(number)
    order = list(range(len(pixels)))
    rng.shuffle(order)
    size = CELLS * CELL
    x0, y0 = atlas_origin(number)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": Affine(PIXEL_M, 0, x0, 0, -PIXEL_M, y0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "jpeg",
        "jpeg_quality": 92,
        "photometric": "YCBCR",
    }
    partial = path.with_name(f".{path.name}.partial")
    with rasterio.open(partial, "w", **profile) as dst:
        for row in range(CELLS):
            strip = np.zeros((CELL, size, 3), np.uint8)
            for col in range(CELLS):
                scene = pixels[order[row * CELLS + col]]
                turn = rng.randrange(8)
                scene = np.rot90(scene, turn % 4)
                if turn >= 4:
                    scene = scene[:, ::-1]
                strip[:, col * CELL : (col + 1) * CELL] = scene
            window = rasterio.windows.Window(0, row * CELL, size, CELL)
            dst.write(strip.transpose(2, 0, 1), window=window)
    os.replace(partial, path)


def shifts(phases: int) -> list[int]:
    """``phases`` shifts (px) spread over one cell: 0, 19, 38, ... for 8."""
    return [round(i * CELL / phases) for i in range(phases)]


def window_vrt(atlas: Path, number: int, dx: int, dy: int) -> str:
    """A VRT of the atlas's window at (dx, dy) px, 99 x 99 cells, georeferenced where it lies."""
    size = WINDOW_CELLS * CELL
    x0, y0 = atlas_origin(number)
    bands = []
    for band, colour in enumerate(("Red", "Green", "Blue"), start=1):
        bands.append(
            f'  <VRTRasterBand dataType="Byte" band="{band}">\n'
            f"    <ColorInterp>{colour}</ColorInterp>\n"
            "    <SimpleSource>\n"
            f'      <SourceFilename relativeToVRT="1">{atlas.name}</SourceFilename>\n'
            f"      <SourceBand>{band}</SourceBand>\n"
            f'      <SrcRect xOff="{dx}" yOff="{dy}" xSize="{size}" ySize="{size}"/>\n'
            f'      <DstRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>\n'
            "    </SimpleSource>\n"
            "  </VRTRasterBand>\n"
        )
    transform = f"{x0 + dx * PIXEL_M}, {PIXEL_M}, 0, {y0 - dy * PIXEL_M}, 0, {-PIXEL_M}"
    return (
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}">\n'
        "  <SRS>EPSG:32633</SRS>\n"
        f"  <GeoTransform>{transform}</GeoTransform>\n" + "".join(bands) + "</VRTDataset>\n"
    )


def prepare(folder: Path, aid_dir: Path, atlases: int, phases: int) -> None:
    """Write the atlases (skipping finished ones), the window VRTs and the raster list."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = None
    names = []
    for number in range(atlases):
        atlas = folder / f"atlas-{number:02d}.tif"
        if not atlas.exists():
            if pixels is None:
                pixels = load_scenes(aid_scenes(aid_dir))
            started = time.perf_counter()
            write_atlas(atlas, number, pixels)
            print(
                f"{atlas.name}: {atlas.stat().st_size / 1e6:.0f} MB in "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
        for dy in shifts(phases):
            for dx in shifts(phases):
                vrt = folder / f"window-{number:02d}-{dx:03d}-{dy:03d}.vrt"
                vrt.write_text(window_vrt(atlas, number, dx, dy))
                names.append(vrt.name)
    (folder / RASTER_LIST).write_text("\n".join(names) + "\n")
    tiles = len(names) * WINDOW_CELLS**2
    print(f"{len(names)} rasters, {tiles:,} tiles: {folder / RASTER_LIST}")


def build(folder: Path, extra: list[str]) -> None:
    """Run (or resume) the build through the real command line; log the invocation."""
    command = [
        sys.executable, "-m", "snca_cli.cli", "index", "build", str(folder / RASTER_LIST),
        "-o", str(folder / INDEX_NAME), "--workers", str(WORKERS), "--shard-size", SHARD_SIZE,
        *extra,
    ]  # fmt: skip
    usage = folder / ".build.usage.json"
    usage.unlink(missing_ok=True)  # a run killed with its launcher leaves none of its own
    log = folder / "build.log"
    started = time.time()
    with open(log, "a") as output:
        output.write(f"\n$ {' '.join(command)}  # {time.ctime(started)}\n")
        output.flush()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(usage), *command],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    figures = json.loads(usage.read_text()) if usage.exists() else {}
    text = log.read_text().rsplit("\n$ ", 1)[-1]
    reused = re.search(r"(\d[\d,]*) work units, (\d[\d,]*) reused", text)
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "returncode": done.returncode,
        "finished": done.returncode == 0,
        "wall_s": figures.get("wall_s", time.time() - started),
        "cpu_s": figures.get("cpu_s"),
        "peak_mb": figures.get("peak_kb", 0) / 1024.0,
        "units": int(reused.group(1).replace(",", "")) if reused else None,
        "reused": int(reused.group(2).replace(",", "")) if reused else None,
        "last_line": text.strip().splitlines()[-1] if text.strip() else "",
        "cpu": cpu_line(),
    }
    with open(folder / RUNS_LOG, "a") as runs:
        runs.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=1))


def cpu_line() -> str:
    """The machine, as benchmarks print it: architecture, cores, int8/fp32 vector features."""
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^flags\s*:(.*)$", text, re.M)
        have = set(found.group(1).split()) if found else set()
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f in have)
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores, {flags}".strip(", ")


def measure(folder: Path, queries: int, out: Path | None) -> None:
    """Search p50/p99 and recall@10 of the finished index, with the build's figures."""
    from snca_cli.tasks.index.search import TileIndex

    index_dir = folder / INDEX_NAME
    runs = [json.loads(line) for line in (folder / RUNS_LOG).read_text().splitlines() if line]
    for run in runs:  # the figures name the folder DIR, as the docs do
        run["last_line"] = run["last_line"].replace(str(folder), "DIR")
    embeddings = np.load(index_dir / "embeddings.npy", mmap_mode="r")
    count = len(embeddings)
    ids = np.random.default_rng(0).choice(count, size=queries, replace=False)
    times, found = [], []
    started = time.perf_counter()
    with TileIndex.open(index_dir) as index:
        opened = time.perf_counter() - started
        first = index.search_tile(index.tile_at_row(int(ids[0])), 10)
        first_s = time.perf_counter() - started - opened
        for row in ids:
            t0 = time.perf_counter()
            result = index.search_tile(index.tile_at_row(int(row)), 10)
            times.append(time.perf_counter() - t0)
            found.append([hit.tile.index_row for hit in result.hits])
    del first
    exact = exact_neighbours(embeddings, ids[:RECALL_QUERIES], 10)
    recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=False)]))
    figures = {
        "tiles": count,
        "build_runs": runs,
        "build_wall_s": sum(r["wall_s"] or 0 for r in runs),
        "build_peak_mb": max(r["peak_mb"] or 0 for r in runs),
        "index_bytes": sum(p.stat().st_size for p in index_dir.iterdir()),
        "open_s": opened,
        "first_search_s": first_s,
        "search_p50_ms": float(np.percentile(times, 50) * 1e3),
        "search_p99_ms": float(np.percentile(times, 99) * 1e3),
        "recall_at_10": recall,
        "queries": queries,
        "cpu": cpu_line(),
    }
    print(json.dumps(figures, indent=1))
    if out is not None:
        out.write_text(json.dumps(figures, indent=1) + "\n")


def exact_neighbours(embeddings: np.ndarray, ids: np.ndarray, k: int) -> list[list[int]]:
    """The ``k`` nearest tiles of each query tile by exact inner product (itself left out)."""
    queries = np.asarray(embeddings[ids], np.float32)
    best_scores = np.full((len(ids), k + 1), -np.inf, np.float32)
    best_ids = np.zeros((len(ids), k + 1), np.int64)
    step = 500_000
    for start in range(0, len(embeddings), step):
        block = np.asarray(embeddings[start : start + step], np.float32)
        scores = queries @ block.T
        scores = np.concatenate([best_scores, scores], axis=1)
        block_ids = np.broadcast_to(np.arange(start, start + len(block)), (len(ids), len(block)))
        candidates = np.concatenate([best_ids, block_ids], axis=1)
        top = np.argpartition(-scores, k, axis=1)[:, : k + 1]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(candidates, top, axis=1)
    result = []
    for row, tile_id in zip(best_ids, ids, strict=True):
        result.append([int(i) for i in row if i != tile_id][:k])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    prep = sub.add_parser("prepare")
    prep.add_argument("folder", type=Path)
    default_aid = Path(os.environ.get("SNCA_SHARED_DATA", "shared/data")) / "aid150"
    prep.add_argument("--aid", type=Path, default=default_aid)
    prep.add_argument("--atlases", type=int, default=16)
    prep.add_argument("--phases", type=int, default=8)
    run = sub.add_parser("build")
    run.add_argument("folder", type=Path)
    meas = sub.add_parser("measure")
    meas.add_argument("folder", type=Path)
    meas.add_argument("--queries", type=int, default=1000)
    meas.add_argument("--out", type=Path)
    args, extra = parser.parse_known_args()
    if args.step == "prepare":
        prepare(args.folder, args.aid, args.atlases, args.phases)
    elif args.step == "build":
        build(args.folder, extra)
    else:
        measure(args.folder, args.queries, args.out)


if __name__ == "__main__":
    main()
