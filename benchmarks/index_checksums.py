"""Benchmark the cost of the index checksums: opening an index with and without verification.

Writes a real index folder of ``--count`` clustered unit vectors (``--dim``, the shipped
model's 128 by default) in ``--shards`` hnswlib graphs with
:func:`snca_cli.tasks.index.store.write_index_files` (graphs, embeddings, tile table,
GeoPackage, manifest), then, in the same run:

* **baseline**: opening without any check: memory maps of the tile table and the embeddings;
* **cold**: :func:`snca_cli.tasks.index.store.read_index` with ``verify="always"``: sha256 of
  every file checked against the manifest and the tile table checked, as the first open of an
  index does (the check is then recorded in snca's cache folder);
* **warm**: ``read_index`` of the same unchanged files, whose check is recorded: no hashing;
* loading the graphs from the opened files (the first search does it; the same after either);
* the sha256 throughput alone, and the time the checksums add to writing.

Each timing is the median of ``--repeat`` runs (the files are in the page cache after the first:
"cold" is the full verification, not a cold page cache).

    python benchmarks/index_checksums.py --count 1000000 --shards 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from adapt import cpu_line
from search_latency import clustered_embeddings

from snca_cli.contract.tiling import TilingOptions
from snca_cli.runtime.ann import IndexParams, build_hnsw, shard_ranges
from snca_cli.runtime.user_cache import CACHE_ENV
from snca_cli.tasks.index import store, verified
from snca_cli.tasks.index.store import (
    EMBEDDINGS_NAME,
    TILE_DTYPE,
    TILES_NAME,
    IndexedRaster,
    Manifest,
    read_index,
    write_index_files,
)


def write_index(
    folder: Path, count: int, dim: int, params: IndexParams, shards: int = 1, classes: int = 1
) -> float:
    """Write an index of ``count`` vectors in ``shards`` graphs into ``folder``, each tile of
    one of ``classes`` classes (``class_0``, ...) drawn at random; return the seconds the
    checksums took (hashing every file once, as write_index_files does)."""
    embeddings = clustered_embeddings(count, dim, clusters=64, noise=0.3, seed=1)
    tiles = np.zeros(count, TILE_DTYPE)
    tiles["class_index"] = np.random.default_rng(3).integers(0, classes, count)
    side = int(np.ceil(np.sqrt(count)))
    ids = np.arange(count)
    tiles["grid_id"], tiles["row"], tiles["col"] = ids, ids // side, ids % side
    tiles["width"] = tiles["height"] = 150
    tiles["minx"], tiles["maxy"] = tiles["col"] * 150.0, -tiles["row"] * 150.0
    tiles["maxx"], tiles["miny"] = tiles["minx"] + 150.0, tiles["maxy"] - 150.0
    tiles["valid_fraction"], tiles["score"] = 1.0, 0.9
    raster = IndexedRaster(
        path="/data/mosaic.tif",
        relative_path="mosaic.tif",
        crs_wkt=_utm_wkt(),
        epsg=32633,
        transform=[1.0, 0.0, 0.0, 0.0, -1.0, 0.0],
        width=side * 150,
        height=side * 150,
        resampled=False,
        first_tile_id=0,
        tile_count=count,
        skipped=0,
        layer="tiles_epsg_32633",
    )
    manifest = Manifest(
        model_sha256="0" * 64,
        model_name="benchmark.onnx",
        embedding_dim=dim,
        class_names=[f"class_{i}" for i in range(classes)],
        tile_size=150,
        model_resolution_m=None,
        input_bands=3,
        tiling=TilingOptions(overlap=0.0),
        params=params,
        ann="hnswlib",
        count=count,
        graph_bytes=0,
        rasters=[raster],
        shard_size=-(-count // shards) if shards > 1 else 0,
    )
    ranges = shard_ranges(count, manifest.shard_size)
    for name, (start, stop) in zip(manifest.graph_names, ranges, strict=True):
        build_hnsw(embeddings[start:stop], params, np.arange(start, stop)).save(folder / name)
    hashed = []
    digest = store.file_digest

    def timed_digest(handle):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return digest(handle)
        finally:
            hashed.append(time.perf_counter() - start)

    store.file_digest = timed_digest
    try:
        write_index_files(folder, manifest, tiles, embeddings)
    finally:
        store.file_digest = digest
    return sum(hashed)


def _utm_wkt() -> str:
    from rasterio.crs import CRS

    return CRS.from_epsg(32633).to_wkt()


def baseline_open(folder: Path) -> None:
    """The index's arrays mapped, nothing checked."""
    np.load(folder / TILES_NAME, mmap_mode="r", allow_pickle=False)
    np.load(folder / EMBEDDINGS_NAME, mmap_mode="r", allow_pickle=False)


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` calls of ``run``."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    params = IndexParams(M=args.M, ef_construction=args.ef_construction)
    folder = Path(tempfile.mkdtemp(prefix="snca-checksums-"))
    os.environ[CACHE_ENV] = str(folder / "cache")  # the records of this run only
    index = folder / "index"
    index.mkdir()
    try:
        print(cpu_line())
        start = time.perf_counter()
        hashing_write = write_index(index, args.count, args.dim, params, args.shards)
        written = time.perf_counter() - start
        sizes = {p.name: p.stat().st_size for p in index.iterdir()}
        total = sum(sizes.values())
        time.sleep(verified.RACY_S)  # files written just now are not recorded
        baseline = median_seconds(lambda: baseline_open(index), args.repeat)
        cold = median_seconds(lambda: read_index(index, verify="always"), args.repeat)
        recorded = verified.record_path(store.real_index_path(index)).is_file()
        warm = median_seconds(lambda: read_index(index), args.repeat)
        graphs = median_seconds(lambda: read_index(index).load_graph(), args.repeat) - warm
        print(
            f"index of {args.count:,} x {args.dim}-d vectors in {args.shards} graph(s): "
            f"{total / 1e6:,.1f} MB"
        )
        for name, size in sorted(sizes.items()):
            print(f"  {name:15s} {size / 1e6:10,.1f} MB")
        print(
            f"written in {written:.1f} s, of which checksums {hashing_write:.2f} s "
            f"({total / hashing_write / 1e9:.2f} GB/s)"
        )
        for label, seconds in (
            ("open, arrays mapped, nothing checked (baseline)", baseline),
            ("open cold (every file verified, then recorded)", cold),
            (f"open warm (verification recorded: {recorded})", warm),
            ("graphs loaded by the first search (either way)", graphs),
        ):
            print(f"{label:48s} {seconds * 1e3:9.2f} ms")
        saved = (cold - warm) * 1e3
        print(f"ratio cold / warm: {cold / warm:,.0f}x ({saved:,.0f} ms less per open)")
        print(f"ratio warm / baseline: {warm / baseline:.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
