"""Benchmark serving "tiles similar to tile X" from LanceDB against snca's own hnswlib search.

Writes a real snca index of ``--count`` clustered 128-d unit vectors
(:func:`index_checksums.write_index`: the hnswlib graph, embeddings and tile table; each tile of
one of ``--classes`` classes drawn at random), exports it with ``snca index export``
(GeoParquet), then, in the same run, each part in a fresh process of its own (so its peak RSS
is its own):

* **load**: ``examples/serve_lancedb.py``'s ``load_export`` into a LanceDB folder: rows/s
  (streamed in record batches), IVF_PQ and scalar index build time, table size on disk;
* **LanceDB search**: a process that opens the table and asks, for ``--queries`` random tiles,
  the 10 tiles most similar (the tile looked up by id, itself excluded), without and with a
  ``class_name`` filter: p50/p99 latency and recall@10 against exact search; the exact scan's
  latency on a few queries;
* **baseline**: snca's ``TileIndex`` (hnswlib) ``search_tile_id`` on the same index and queries.

``--index DIR`` measures an existing snca index instead of writing one, e.g. the real-model
embeddings of ``benchmarks/ten_million.py``: the query tiles are drawn from its rows (each
named by its raster and tile id), and the class filter is the model's class whose share of the
tiles is nearest 10 %.

The true neighbours come from snca's exact search (``TileIndex.open(exact=True)``). Every
latency is measured after ``WARM_QUERIES`` untimed queries; p50 is the median over queries.

    python benchmarks/serving.py --count 1000000 --json docs/serving_lancedb.json
    python benchmarks/serving.py --index DIR/ten_million.index --json docs/serving_real.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from adapt import cpu_line
from index_checksums import write_index

from snca_cli.runtime.ann import IndexParams
from snca_cli.tasks.index.geoparquet import export_geoparquet
from snca_cli.tasks.index.search import TileIndex

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # examples/: the LanceDB example measured here
    sys.path.append(str(ROOT))

from examples.serve_lancedb import (  # noqa: E402
    SearchParams,
    load_export,
    open_table,
    search_vector,
    similar_tiles,
    tile_embedding,
)

#: Untimed queries before each timed series (caches, lazily loaded indexes).
WARM_QUERIES = 20
#: Queries timed with LanceDB's exact scan (it reads every vector).
EXACT_QUERIES = 10
K = 10
#: The re-ranking depths measured for searches by vector (x k candidates).
REFINE_FACTORS = (20, 50, 100)
RASTER = "mosaic.tif"
#: The class filter keeps about this share of the tiles.
FILTER_SHARE = 0.1

#: A query tile: its id in its raster's grid and the raster's file name.
Query = tuple[int, str]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def timed_queries(search: Callable[[Query], list[int]], queries: list[Query]) -> dict:
    """Latency p50/p99 (ms) of ``search`` over ``queries``, one at a time, and the rows found."""
    for query in queries[:WARM_QUERIES]:
        search(query)
    seconds, found = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search(query))
        seconds.append(time.perf_counter() - start)
    return {
        "p50_ms": float(np.percentile(seconds, 50) * 1e3),
        "p99_ms": float(np.percentile(seconds, 99) * 1e3),
        "found": found,
    }


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    """Fraction of the true k nearest rows found."""
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / sum(len(t) for t in truth)


def measure_load(export: Path, uri: str) -> dict:
    """Load the export into the LanceDB folder ``uri`` and index it."""
    done = load_export(export, uri)
    return {
        "rows": done.rows,
        "load_s": done.load_s,
        "rows_per_s": done.rows / done.load_s,
        "index_s": done.index_s,
        "table_bytes": folder_bytes(Path(uri)),
        "peak_rss_mb": peak_rss_mb(),
    }


def lancedb_rows(table, params: SearchParams, where: str | None) -> Callable[[Query], list[int]]:
    """A search of the table by tile id returning the hits' index rows."""

    def search(query: Query) -> list[int]:
        hits = similar_tiles(table, query[0], query[1], K, where, params)
        return hits["index_row"].to_pylist()

    return search


def measure_lancedb(uri: str, queries: list[Query], where: str) -> dict:
    """A fresh search process: open the table, time queries without and with ``where``."""
    start = time.perf_counter()
    table = open_table(uri)
    opened = time.perf_counter() - start
    figures = {"open_s": opened}
    for name, filter_ in (("plain", None), ("filtered", where)):
        figures[name] = timed_queries(lancedb_rows(table, SearchParams(), filter_), queries)
    vectors = {query: tile_embedding(table, *query) for query in queries}

    for refine in REFINE_FACTORS:
        params = SearchParams(refine_factor=refine)

        def by_vector(query: Query, params: SearchParams = params) -> list[int]:
            row, vector = vectors[query]
            rows = search_vector(table, vector, K + 1, None, params)["index_row"].to_pylist()
            return [r for r in rows if r != row][:K]

        figures[f"vector_refine_{refine}"] = timed_queries(by_vector, queries)
    exact = lancedb_rows(table, SearchParams(exact=True), None)
    figures["exact_scan"] = timed_queries(exact, queries[: WARM_QUERIES + EXACT_QUERIES])
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def snca_rows(index: TileIndex, class_name: str | None) -> Callable[[Query], list[int]]:
    """snca's search by tile id returning the hits' index rows."""

    def search(query: Query) -> list[int]:
        result = index.search_tile_id(query[0], K, class_name, query[1])
        return [hit.tile.index_row for hit in result.hits]

    return search


def measure_snca(folder: Path, queries: list[Query], class_name: str, exact: bool) -> dict:
    """A fresh search process on the snca index (hnswlib, or exact for the truth)."""
    with TileIndex.open(folder, exact=exact) as index:
        figures = {
            name: timed_queries(snca_rows(index, filter_), queries)
            for name, filter_ in (("plain", None), ("filtered", class_name))
        }
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def prepare(folder: Path, export: Path, count: int, classes: int, written: bool) -> dict:
    """Write the snca index (hnswlib graph included; unless ``written``) and its GeoParquet
    export."""
    start = time.perf_counter()
    if not written:
        folder.mkdir()
        write_index(folder, count, 128, IndexParams(), classes=classes)
    index_s = time.perf_counter() - start
    start = time.perf_counter()
    export_geoparquet(folder, export)
    return {
        "snca_index_s": index_s,
        "export_s": time.perf_counter() - start,
        "export_bytes": export.stat().st_size,
        "snca_index_bytes": folder_bytes(folder),
        "peak_rss_mb": peak_rss_mb(),
    }


def in_fresh_process(function: Callable, *args: object) -> dict:
    """``function(*args)`` run in a new (spawned) Python process."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def query_tiles(folder: Path, count: int) -> tuple[list[Query], str, float]:
    """``count`` random tiles of the index (seeded), the class whose share of the tiles is
    nearest ``FILTER_SHARE``, and that share."""
    with TileIndex.open(folder, exact=True) as index:
        rows = np.random.default_rng(11).choice(index.count, count, replace=False)
        tiles = [index.tile_at_row(int(row)) for row in rows]
        classes = np.load(folder / "tiles.npy", mmap_mode="r")["class_index"]
        shares = np.bincount(classes, minlength=len(index.class_names)) / index.count
        chosen = int(np.argmin(np.abs(shares - FILTER_SHARE)))
        class_name = index.class_names[chosen]
    return [(tile.tile_id, tile.raster.name) for tile in tiles], class_name, float(shares[chosen])


def run(count: int, classes: int, queries: int, work: Path, index: Path | None = None) -> dict:
    """Every figure of the benchmark, measured in ``work`` (on ``index`` when given)."""
    folder, export, uri = work / "region.index", work / "tiles.parquet", str(work / "lancedb")
    if index is not None:
        folder = index
    prepared = in_fresh_process(prepare, folder, export, count, classes, index is not None)
    if index is None:
        rng = np.random.default_rng(11)
        tiles = rng.choice(count, WARM_QUERIES + queries, replace=False)
        chosen: list[Query] = [(int(tile_id), RASTER) for tile_id in tiles]
        class_name, share, dim = "class_0", None, 128
    else:
        chosen, class_name, share = query_tiles(folder, WARM_QUERIES + queries)
        count, dim = np.load(folder / "embeddings.npy", mmap_mode="r").shape
        classes = None
    truth = in_fresh_process(measure_snca, folder, chosen, class_name, True)
    load = in_fresh_process(measure_load, export, uri)
    lance = in_fresh_process(measure_lancedb, uri, chosen, f"class_name = '{class_name}'")
    hnsw = in_fresh_process(measure_snca, folder, chosen, class_name, False)
    for figures in (lance, hnsw):
        for name in [n for n, part in figures.items() if isinstance(part, dict)]:
            if name == "exact_scan":
                continue
            truth_of = truth["filtered" if name == "filtered" else "plain"]["found"]
            figures[name]["recall_at_10"] = recall(figures[name]["found"], truth_of)
    for figures in (truth, lance, hnsw):
        for part in figures.values():
            if isinstance(part, dict):
                part.pop("found", None)
    return {
        "cpu": cpu_line(),
        "index": index.name if index is not None else None,
        "count": count,
        "dim": dim,
        "classes": classes,
        "filter": {"class_name": class_name, "share": share},
        "queries": queries,
        "k": K,
        "prepare": prepared,
        "load": load,
        "lancedb": lance,
        "snca_hnswlib": hnsw,
        "snca_exact": truth,
    }


def report(figures: dict) -> str:
    """The figures as lines of text, with the LanceDB / hnswlib ratios."""
    load, lance, hnsw = figures["load"], figures["lancedb"], figures["snca_hnswlib"]
    prepared = figures["prepare"]
    if figures["index"] is None:
        vectors = (
            f"{figures['count']:,} clustered {figures['dim']}-d unit vectors, "
            f"{figures['classes']} classes"
        )
        written = f"(hnswlib M=16, ef_construction 200) written in {prepared['snca_index_s']:.1f} s"
    else:
        chosen = figures["filter"]
        vectors = (
            f"{figures['count']:,} tiles of the index {figures['index']}; filter class "
            f"{chosen['class_name']} ({chosen['share']:.1%} of the tiles)"
        )
        written = "(hnswlib, as built)"
    lines = [
        f"CPU: {figures['cpu']}",
        f"{vectors}; {figures['queries']} single queries, top-{figures['k']}",
        f"snca index {written}, {prepared['snca_index_bytes'] / 1e6:,.0f} MB; "
        "GeoParquet export "
        f"{prepared['export_s']:.1f} s, {prepared['export_bytes'] / 1e6:,.0f} MB (peak RSS "
        f"{prepared['peak_rss_mb']:,.0f} MB)",
        f"LanceDB load: {load['load_s']:.1f} s ({load['rows_per_s']:,.0f} rows/s), indexes "
        f"(IVF_PQ + scalar) {load['index_s']:.1f} s, table {load['table_bytes'] / 1e6:,.0f} MB"
        f" on disk, loader peak RSS {load['peak_rss_mb']:,.0f} MB",
        f"{'search':34s} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>10} {'peak RSS MB':>12}",
    ]
    for label, figures_of in (("LanceDB IVF_PQ", lance), ("snca hnswlib (baseline)", hnsw)):
        for name in ("plain", "filtered"):
            part = figures_of[name]
            lines.append(
                f"{label + ' ' + name:34s} {part['p50_ms']:8.2f} {part['p99_ms']:8.2f} "
                f"{part['recall_at_10']:10.4f} {figures_of['peak_rss_mb']:12,.0f}"
            )
    for refine in REFINE_FACTORS:
        part = lance[f"vector_refine_{refine}"]
        lines.append(
            f"{f'LanceDB by vector, refine {refine}':34s} {part['p50_ms']:8.2f} "
            f"{part['p99_ms']:8.2f} {part['recall_at_10']:10.4f}"
        )
    scan = lance["exact_scan"]
    label = "LanceDB exact scan (no index)"
    lines.append(f"{label:34s} {scan['p50_ms']:8.2f} {scan['p99_ms']:8.2f}")
    for name in ("plain", "filtered"):
        lines.append(
            f"LanceDB / hnswlib, {name}: p50 {lance[name]['p50_ms'] / hnsw[name]['p50_ms']:.1f}x,"
            f" p99 {lance[name]['p99_ms'] / hnsw[name]['p99_ms']:.1f}x"
        )
    lines.append(f"LanceDB search process opened the table in {lance['open_s'] * 1e3:.0f} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--workdir", type=Path, help="where the index goes [a temp folder]")
    parser.add_argument("--index", type=Path, help="measure this snca index instead of writing one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="snca-serving-", dir=args.workdir) as tmp:
        figures = run(args.count, args.classes, args.queries, Path(tmp), args.index)
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
