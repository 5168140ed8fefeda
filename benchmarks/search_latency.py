"""Benchmark the similar-tile search: hnswlib graph against exact numpy search, same data, same run.

For each index size: build time of the hnswlib cosine graph, single-query latency (p50/p99)
through :class:`snca_cli.runtime.ann.HnswSearch` for each ``ef``, recall@k against
:class:`snca_cli.runtime.ann.ExactSearch`, and the exact search's own latency as the baseline.

With ``--shards 4 8`` (each count above 1; 1 is the single graph above): the same vectors in
that many graphs, and single queries through :class:`snca_cli.runtime.ann.ShardedSearch` asking
the shards one after another (the baseline) and at once on a thread pool, for the first ``ef``:
p50/p99 of each, their ratio and recall@k (the answers must be the same).

The embeddings are random but clustered unit vectors: ``clusters`` Gaussian centres in
``dim`` dimensions, each point its centre plus isotropic Gaussian noise (``noise`` times the
centre's scale per dimension), normalized. Queries are fresh points from the same clusters.

    python benchmarks/search_latency.py --sizes 100000 1000000 --M 16 --ef-construction 200 \\
        --ef 32 64 128 256
    python benchmarks/search_latency.py --sizes 1000000 --shards 4 8 --ef 128
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass

import numpy as np
from adapt import cpu_line

from snca_cli.runtime.ann import (
    ExactSearch,
    HnswSearch,
    IndexParams,
    ShardedSearch,
    build_hnsw,
    normalize,
    shard_ranges,
)
from snca_cli.runtime.cores import usable_cores


@dataclass
class EfFigures:
    """Query figures for one ``ef``."""

    ef: int
    p50_ms: float
    p99_ms: float
    recall: float


def clustered_embeddings(
    n: int, dim: int, clusters: int, noise: float, seed: int, chunk: int = 100_000
) -> np.ndarray:
    """``n`` unit vectors around ``clusters`` centres fixed by (dim, clusters)."""
    centres = np.random.default_rng([dim, clusters]).normal(size=(clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        points = centres[rng.integers(0, clusters, size)]
        points += noise * rng.standard_normal((size, dim), dtype=np.float32)
        out[start : start + size] = normalize(points)
    return out


def single_query_latencies(
    search: HnswSearch | ExactSearch | ShardedSearch, queries: np.ndarray, k: int
) -> np.ndarray:
    """Seconds per query, one query at a time (how an interactive search calls the index)."""
    seconds = np.empty(len(queries))
    for i, query in enumerate(queries):
        start = time.perf_counter()
        search.query(query[None, :], k)
        seconds[i] = time.perf_counter() - start
    return seconds


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of the true k nearest neighbours found."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def percentiles_ms(seconds: np.ndarray) -> tuple[float, float]:
    """p50 and p99 of latencies in seconds, in milliseconds."""
    return float(np.percentile(seconds, 50)) * 1e3, float(np.percentile(seconds, 99)) * 1e3


def run_size(args: argparse.Namespace, n: int) -> None:
    """Build, query and report one index size."""
    t0 = time.perf_counter()
    embeddings = clustered_embeddings(n, args.dim, args.clusters, args.noise, seed=1)
    queries = clustered_embeddings(args.queries, args.dim, args.clusters, args.noise, seed=2)
    print(f"\n== {n:,} x {args.dim}-d embeddings ({time.perf_counter() - t0:.1f} s to generate)")

    exact = ExactSearch(embeddings)
    t0 = time.perf_counter()
    truth = exact.query(queries, args.k).ids
    print(f"exact ground truth for {len(queries)} queries: {time.perf_counter() - t0:.1f} s")
    for shards in args.shards:
        if shards == 1:
            single_graph(args, embeddings, queries, truth, exact)
        else:
            fan_out(args, embeddings, queries, truth, shards)


def single_graph(
    args: argparse.Namespace,
    embeddings: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    exact: ExactSearch,
) -> None:
    """One graph of every vector: p50/p99 and recall for each ``ef`` against exact search."""
    n = len(embeddings)
    exact_seconds = single_query_latencies(exact, queries[: args.exact_latency_queries], args.k)
    exact_p50 = float(np.median(exact_seconds)) * 1e3

    params = IndexParams(M=args.M, ef_construction=args.ef_construction, ef=args.ef[0])
    t0 = time.perf_counter()
    graph = build_hnsw(embeddings, params)
    build_s = time.perf_counter() - t0
    print(
        f"hnswlib build (M={args.M}, ef_construction={args.ef_construction}): {build_s:.1f} s "
        f"({n / build_s:,.0f} vectors/s)"
    )

    figures = []
    for ef in args.ef:
        graph.params = IndexParams(M=args.M, ef_construction=args.ef_construction, ef=ef)
        found = graph.query(queries, args.k).ids
        p50, p99 = percentiles_ms(single_query_latencies(graph, queries, args.k))
        figures.append(EfFigures(ef=ef, p50_ms=p50, p99_ms=p99, recall=recall_at_k(found, truth)))
    print(f"{'ef':>5} {'p50 ms':>8} {'p99 ms':>8} {f'recall@{args.k}':>10} {'vs exact p50':>13}")
    for f in figures:
        print(
            f"{f.ef:>5} {f.p50_ms:>8.3f} {f.p99_ms:>8.3f} {f.recall:>10.4f} "
            f"{exact_p50 / f.p50_ms:>12.0f}x"
        )
    print(
        f"exact baseline: p50 {exact_p50:.2f} ms, p99 "
        f"{float(np.percentile(exact_seconds, 99)) * 1e3:.2f} ms per query "
        f"({len(exact_seconds)} queries)"
    )


def python_speed_during_search(search: HnswSearch, queries: np.ndarray, k: int) -> float:
    """How fast a Python loop runs in this thread while another thread searches ``queries`` in
    one hnswlib call on one thread, as a fraction of its speed alone: about 0 if hnswlib held
    the GIL while it searches, up to 1 with a core free for this thread."""
    start, spins = time.perf_counter(), 0
    while time.perf_counter() - start < 0.2:
        spins += 1
    alone = spins / (time.perf_counter() - start)
    worker = threading.Thread(target=search.query, args=(queries, k, 1))
    start, spins = time.perf_counter(), 0
    worker.start()
    while worker.is_alive():
        spins += 1
    return spins / (time.perf_counter() - start) / alone


def fan_out(
    args: argparse.Namespace,
    embeddings: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    shards: int,
) -> None:
    """``shards`` graphs searched one after another (baseline) and at once: single-query
    p50/p99 of each (alternating passes, medians over them), their ratio, and recall."""
    params = IndexParams(M=args.M, ef_construction=args.ef_construction, ef=args.ef[0])
    ranges = shard_ranges(len(embeddings), -(-len(embeddings) // shards))
    t0 = time.perf_counter()
    graphs = [build_hnsw(embeddings[a:b], params, np.arange(a, b)) for a, b in ranges]
    print(
        f"\n{shards} shards of {ranges[0][1] - ranges[0][0]:,} (ef {params.ef}): built in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    speed = python_speed_during_search(graphs[0], np.tile(queries, (5, 1)), args.k)
    print(f"  a Python loop ran at {speed:.2f}x its speed alone while hnswlib searched")
    searches = {
        "one after another": ShardedSearch(graphs, threads=1),
        "at once": ShardedSearch(graphs),
    }
    found = {name: search.query(queries, args.k).ids for name, search in searches.items()}
    passes: dict[str, list[tuple[float, float]]] = {name: [] for name in searches}
    for _ in range(args.passes):  # alternating, so drift of a shared machine hits both alike
        for name, search in searches.items():
            passes[name].append(percentiles_ms(single_query_latencies(search, queries, args.k)))
    medians = {name: np.median(np.array(figures), axis=0) for name, figures in passes.items()}
    for name, search in searches.items():
        p50, p99 = medians[name]
        print(
            f"  {name:17s} ({search.threads} thread(s)): p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
            f"recall@{args.k} {recall_at_k(found[name], truth):.4f}"
        )
    (base50, base99), (par50, par99) = medians["one after another"], medians["at once"]
    print(
        f"  speed-up at once / one after another: p50 {base50 / par50:.2f}x, p99 "
        f"{base99 / par99:.2f}x; same answers: {np.array_equal(*found.values())}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-latency-queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--shards", type=int, nargs="+", default=[1])
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    print(f"{cpu_line()}; {usable_cores()} usable")
    print(
        f"clustered unit embeddings: {args.clusters} clusters, noise {args.noise}, "
        f"{args.queries} queries, k={args.k}"
    )
    for n in args.sizes:
        run_size(args, n)


if __name__ == "__main__":
    main()
