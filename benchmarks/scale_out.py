"""Benchmark running snca on a Dask cluster, and searching a sharded index.

Three parts, each against a baseline measured in the same run:

* ``embed``: `index build` of the same generated rasters with the shipped model
  (a) in this process, 1 onnxruntime thread, against a LocalCluster of 1 worker x 1 thread
  (the overhead of the cluster path; goal >= 0.9x), and (b) in this process with 2 threads
  against a LocalCluster of 2 workers x 1 thread (scaling on one machine). The cluster is
  started before the clock (its start-up is printed on its own).
* ``project``: the scheduler's cost per task, measured with many no-op tasks, and the time per
  work unit measured in ``embed``, projected to 10 and 100 workers for the given tile count.
* ``search``: single-query latency p50/p99 and recall@10 (against exact search) of one hnswlib
  graph against the same vectors in 4 shards searched by fan-out, with build time per shard
  and graph bytes per vector.

    python benchmarks/scale_out.py embed --rasters 8 --size 3000 --unit-tiles 400
    python benchmarks/scale_out.py search --count 1000000 --dim 128
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from search_latency import clustered_embeddings, recall_at_k, single_query_latencies
from synthetic_raster import write_synthetic_raster

from snca_cli.runtime.ann import ExactSearch, IndexParams, ShardedSearch, build_hnsw, shard_ranges
from snca_cli.runtime.cluster import ClusterSpec
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.units import RunOptions

#: Tiles per work unit in ``embed`` (set from --unit-tiles).
UNIT_TILES = [400]


def _build(rasters: list[Path], out: Path, threads: int, cluster: ClusterSpec | None) -> float:
    model = OnnxModel(resolve_model(None), threads=threads)
    start = time.perf_counter()
    run = RunOptions(cluster=cluster, unit_tiles=UNIT_TILES[0])
    summary = build_index(rasters, model, out, force=True, run=run)
    seconds = time.perf_counter() - start
    print(
        f"    {summary.added} tiles, {summary.units or 1} unit(s): {seconds:.2f} s "
        f"({summary.added / seconds:.1f} tiles/s)"
    )
    return seconds


def _on_cluster(workers: int, rasters: list[Path], out: Path) -> float:
    import distributed

    start = time.perf_counter()
    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        print(f"    LocalCluster of {workers} started in {time.perf_counter() - start:.2f} s")
        spec = ClusterSpec(address=local.scheduler_address, threads_per_worker=1)
        return _build(rasters, out, 1, spec)


def embed(args: argparse.Namespace) -> None:
    UNIT_TILES[0] = args.unit_tiles
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rasters = [
            write_synthetic_raster(root / f"r{i}.tif", args.size, seed=i)
            for i in range(args.rasters)
        ]
        print(f"{args.rasters} rasters of {args.size} x {args.size} px, the shipped model")
        print("  in this process, 1 thread (baseline)")
        base1 = _build(rasters, root / "a", 1, None)
        print("  LocalCluster, 1 worker x 1 thread")
        one = _on_cluster(1, rasters, root / "b")
        print("  in this process, 2 threads (baseline)")
        base2 = _build(rasters, root / "c", 2, None)
        print("  LocalCluster, 2 workers x 1 thread")
        two = _on_cluster(2, rasters, root / "d")
        print(f"overhead: 1 worker runs at {base1 / one:.2f}x the in-process speed (goal >= 0.9)")
        print(f"scaling: 2 workers x 1 thread run at {base2 / two:.2f}x 1 process x 2 threads")
        tiles = args.rasters * (args.size // 150) ** 2
        print(f"per tile on one worker: {one / tiles * 1e3:.2f} ms")


def project(args: argparse.Namespace) -> None:
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as client,
    ):
        start = time.perf_counter()
        futures = client.map(lambda i: i, range(args.tasks), pure=False)
        client.gather(futures)
        per_task = (time.perf_counter() - start) / args.tasks
    units = -(-args.tiles // args.unit_tiles)
    unit_s = args.unit_tiles * args.tile_s
    print(f"scheduler: {args.tasks} no-op tasks at {per_task * 1e3:.2f} ms each")
    print(
        f"{args.tiles:,} tiles in {units:,} units of {args.unit_tiles:,} tiles "
        f"({unit_s:.0f} s per unit at {args.tile_s * 1e3:.1f} ms per tile per worker)"
    )
    single = units * unit_s
    for workers in (1, 10, 100):
        seconds = units * unit_s / workers + units * per_task
        print(
            f"  {workers:>3} workers: {seconds / 3600:,.1f} h "
            f"(speed-up {single / seconds:.1f}x; scheduler {units * per_task:.0f} s)"
        )


def _latencies(search, queries: np.ndarray) -> tuple[float, float]:
    seconds = single_query_latencies(search, queries, 10)
    return float(np.percentile(seconds, 50) * 1e3), float(np.percentile(seconds, 99) * 1e3)


def search(args: argparse.Namespace) -> None:
    vectors = clustered_embeddings(args.count, args.dim, 1000, 0.5, seed=1)
    queries = clustered_embeddings(args.queries, args.dim, 1000, 0.5, seed=2)
    truth = ExactSearch(vectors).query(queries[: args.recall_queries], 10).ids
    params = IndexParams()
    print(
        f"{args.count:,} vectors, {args.dim}-d, M={params.M} ef_construction="
        f"{params.ef_construction} ef={params.ef}; {args.queries} single queries, k=10"
    )
    rows = []
    for shards in (1, 4):
        ranges = shard_ranges(args.count, -(-args.count // shards) if shards > 1 else 0)
        graphs, builds = [], []
        for a, b in ranges:
            start = time.perf_counter()
            graphs.append(build_hnsw(vectors[a:b], params, np.arange(a, b)))
            builds.append(time.perf_counter() - start)
        searcher = graphs[0] if shards == 1 else ShardedSearch(graphs)
        with tempfile.TemporaryDirectory() as tmp:
            graphs[0].save(Path(tmp) / "g.hnsw")
            per_vector = (Path(tmp) / "g.hnsw").stat().st_size / (ranges[0][1] - ranges[0][0])
        p50, p99 = _latencies(searcher, queries)
        recall = recall_at_k(searcher.query(queries[: args.recall_queries], 10).ids, truth)
        rows.append((shards, p50, p99))
        print(
            f"  {shards} shard(s): build {sum(builds):.1f} s ({np.mean(builds):.1f} s per "
            f"shard of {ranges[0][1] - ranges[0][0]:,}), {per_vector:.0f} graph bytes per "
            f"vector, p50 {p50:.3f} ms, p99 {p99:.3f} ms, recall@10 {recall:.4f}"
        )
    print(
        f"4 shards / 1 graph latency: p50 {rows[1][1] / rows[0][1]:.2f}x, "
        f"p99 {rows[1][2] / rows[0][2]:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    e = parts.add_parser("embed")
    e.add_argument("--rasters", type=int, default=8)
    e.add_argument("--size", type=int, default=3000, help="pixels a side (150 px tiles)")
    e.add_argument("--unit-tiles", type=int, default=400)
    p = parts.add_parser("project")
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--tiles", type=int, default=100_000_000)
    p.add_argument("--unit-tiles", type=int, default=20_000)
    p.add_argument("--tile-s", type=float, required=True, help="seconds per tile per worker")
    s = parts.add_parser("search")
    s.add_argument("--count", type=int, default=1_000_000)
    s.add_argument("--dim", type=int, default=128)
    s.add_argument("--queries", type=int, default=1000)
    s.add_argument("--recall-queries", type=int, default=200)
    args = parser.parse_args()
    {"embed": embed, "project": project, "search": search}[args.part](args)


if __name__ == "__main__":
    main()
