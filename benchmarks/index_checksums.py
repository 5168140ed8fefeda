"""Benchmark the cost of the index checksums: opening an index with and without verification.

Writes a real index folder of ``--count`` clustered unit vectors (``--dim``, the shipped
model's 128 by default) with :func:`snca_cli.tasks.index.store.write_index_files` (hnswlib graph,
embeddings, tile table, GeoPackage, manifest), then, in the same run:

* **baseline**: what opening did before checksums: ``np.load`` of the tile table, a memory map of
  the embeddings and hnswlib's ``load_index`` of the graph;
* **verified**: :func:`snca_cli.tasks.index.store.read_index` (sha256 of every file, checked
  against the manifest) plus loading the graph from the verified file;
* the sha256 throughput alone, and the time the checksums add to writing.

Each timing is the best of ``--repeat`` runs (the files are in the page cache after the first).

    python benchmarks/index_checksums.py --count 1000000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import hnswlib
import numpy as np

from snca_cli.contract.tiling import TilingOptions
from snca_cli.runtime.ann import IndexParams, build_hnsw
from snca_cli.tasks.index import store
from snca_cli.tasks.index.store import (
    EMBEDDINGS_NAME,
    GRAPH_NAME,
    TILE_DTYPE,
    TILES_NAME,
    IndexedRaster,
    Manifest,
    read_index,
    write_index_files,
)

try:  # the clustered vectors of the search benchmark, when run from the repository
    from benchmarks.search_latency import clustered_embeddings
except ImportError:  # pragma: no cover - run as a plain script
    from search_latency import clustered_embeddings  # type: ignore[no-redef]


def write_index(folder: Path, count: int, dim: int, params: IndexParams, classes: int = 1) -> float:
    """Write an index of ``count`` vectors into ``folder``, each tile of one of ``classes``
    classes (``class_0``, ...) drawn at random; return the seconds the checksums took (hashing
    every file once, as write_index_files does)."""
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
    )
    build_hnsw(embeddings, params).save(folder / GRAPH_NAME)
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


def baseline_open(folder: Path, dim: int, count: int) -> float:
    start = time.perf_counter()
    np.load(folder / TILES_NAME, allow_pickle=False)
    np.load(folder / EMBEDDINGS_NAME, mmap_mode="r", allow_pickle=False)
    graph = hnswlib.Index(space="cosine", dim=dim)
    graph.load_index(str(folder / GRAPH_NAME), max_elements=count)
    return time.perf_counter() - start


def verified_open(folder: Path) -> float:
    start = time.perf_counter()
    files = read_index(folder)
    files.load_graph()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    params = IndexParams(M=args.M, ef_construction=args.ef_construction)
    folder = Path(tempfile.mkdtemp(prefix="snca-checksums-"))
    try:
        start = time.perf_counter()
        hashing_write = write_index(folder, args.count, args.dim, params)
        written = time.perf_counter() - start
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
        total = sum(sizes.values())
        baseline = min(baseline_open(folder, args.dim, args.count) for _ in range(args.repeat))
        verified = min(verified_open(folder) for _ in range(args.repeat))
        print(f"index of {args.count:,} x {args.dim}-d vectors: {total / 1e6:,.1f} MB")
        for name, size in sorted(sizes.items()):
            print(f"  {name:15s} {size / 1e6:10,.1f} MB")
        print(
            f"written in {written:.1f} s, of which checksums {hashing_write:.2f} s "
            f"({total / hashing_write / 1e9:.2f} GB/s)"
        )
        print(f"open without checksums (baseline): {baseline:.3f} s")
        print(f"open with checksums verified:      {verified:.3f} s")
        print(
            f"ratio verified / baseline: {verified / baseline:.2f}x (+{verified - baseline:.3f} s)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
