"""Benchmark the two search backends of the runtime, same data, same run: exact numpy search
(the default without hnswlib) against the hnswlib graph (the ``hnsw`` extra) with default
parameters.

Both go through :mod:`snca_cli.runtime.ann` as the runtime calls it: :class:`ExactSearch` and
:func:`build_hnsw` with :class:`IndexParams`'s defaults. Figures: the graph's build time,
single-query latency (p50/p95, one vector per call, as an interactive search asks), batched
throughput (every query in one call) and recall@k of the graph against the exact answers.

The embeddings are clustered unit vectors (:func:`search_latency.clustered_embeddings`:
``clusters`` Gaussian centres plus isotropic noise, normalized, float32, seeded); the queries
are fresh points from the same clusters, none of them stored.

    python benchmarks/ann_backends.py --n 1000000 --queries 200 --json docs/ann_backends.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from adapt import cpu_line
from search_latency import clustered_embeddings, recall_at_k, single_query_latencies

from snca_cli.runtime.ann import (
    ExactSearch,
    HnswSearch,
    IndexParams,
    build_hnsw,
    hnswlib_available,
)

#: Repeats of the batched query; the median is reported.
BATCH_REPEATS = 3


@dataclass
class BackendFigures:
    """One backend's figures (``build_s`` and ``recall`` are None for the exact search)."""

    backend: str
    build_s: float | None
    p50_ms: float
    p95_ms: float
    batch_queries_per_s: float
    recall: float | None


def measure(
    search: ExactSearch | HnswSearch, queries: np.ndarray, k: int
) -> tuple[np.ndarray, float, float, float]:
    """The batched answer's ids, single-query p50 and p95 (ms) and batched queries per second."""
    search.query(queries[:1], k)  # warm-up: first touch of the embeddings or the graph
    seconds = single_query_latencies(search, queries, k)
    batch_s = []
    for _ in range(BATCH_REPEATS):
        start = time.perf_counter()
        ids = search.query(queries, k).ids
        batch_s.append(time.perf_counter() - start)
    return (
        ids,
        float(np.percentile(seconds, 50)) * 1e3,
        float(np.percentile(seconds, 95)) * 1e3,
        len(queries) / statistics.median(batch_s),
    )


def package_version(name: str) -> str:
    """The installed version of ``name``, or "absent"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def print_table(figures: list[BackendFigures], k: int) -> None:
    """The backends side by side, and the exact/hnswlib ratio at p50."""
    print(
        f"\n{'backend':<8} {'build s':>8} {'p50 ms':>8} {'p95 ms':>8} {'batch q/s':>10} "
        f"{f'recall@{k}':>10}"
    )
    for f in figures:
        build = "-" if f.build_s is None else f"{f.build_s:.1f}"
        recall = "(truth)" if f.recall is None else f"{f.recall:.4f}"
        print(
            f"{f.backend:<8} {build:>8} {f.p50_ms:>8.3f} {f.p95_ms:>8.3f} "
            f"{f.batch_queries_per_s:>10,.0f} {recall:>10}"
        )
    if len(figures) == 2:
        print(f"exact p50 / hnswlib p50: {figures[0].p50_ms / figures[1].p50_ms:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="Stored vectors.")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args()

    machine = {
        "cpu": cpu_line(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "hnswlib": package_version("hnswlib"),
    }
    print(" | ".join(f"{key} {value}" for key, value in machine.items()))
    params = IndexParams()
    print(
        f"{args.n:,} x {args.dim}-d clustered unit vectors ({args.clusters} clusters, noise "
        f"{args.noise}), {args.queries} fresh queries, k={args.k}; hnswlib M={params.M}, "
        f"ef_construction={params.ef_construction}, ef={params.ef}"
    )
    start = time.perf_counter()
    embeddings = clustered_embeddings(args.n, args.dim, args.clusters, args.noise, seed=1)
    queries = clustered_embeddings(args.queries, args.dim, args.clusters, args.noise, seed=2)
    print(f"data generated in {time.perf_counter() - start:.1f} s")

    truth, p50, p95, rate = measure(ExactSearch(embeddings), queries, args.k)
    figures = [BackendFigures("exact", None, p50, p95, rate, None)]
    if hnswlib_available():
        start = time.perf_counter()
        graph = build_hnsw(embeddings, params)
        build_s = time.perf_counter() - start
        found, p50, p95, rate = measure(graph, queries, args.k)
        figures.append(
            BackendFigures("hnswlib", build_s, p50, p95, rate, recall_at_k(found, truth))
        )
    else:
        print("hnswlib is not installed (pip install 'snca[hnsw]'): exact search only")
    print_table(figures, args.k)

    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        results = {
            "machine": machine,
            "settings": {**settings, "index_params": asdict(params)},
            "backends": [asdict(f) for f in figures],
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
