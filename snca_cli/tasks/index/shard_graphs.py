"""Build the hnswlib graph of every shard of a new index on the cluster's workers.

After the embedding units of a cluster run, the process running the command would otherwise
build every shard's graph itself, one after another (15-20 minutes per 5M-tile shard on two
cores). On a cluster each shard becomes a task: the client sends the shard's embeddings to a
worker, which builds the graph and stores it in the run's work folder (local or a storage URL,
:mod:`snca_cli.runtime.storage`) with ``graph.json`` (its size and sha256) written last; the
client copies the verified file into the index. A shard's folder is named after a hash of its
embeddings and the hnswlib parameters, so a rerun after a failure reuses every graph already
built. Graphs are the same as those built in one process for the same vectors, up to hnswlib's
multi-threaded insertion order (which makes any two builds differ).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from snca_cli.errors import Cancelled, SncaError
from snca_cli.runtime.ann import IndexParams, build_hnsw, shard_ranges
from snca_cli.runtime.atomic import OwnOutput, unlisted_entry
from snca_cli.runtime.cluster import (
    ClusterSpec,
    cancel_all,
    cluster_lost,
    finished_in_turn,
    open_cluster,
    portable_errors,
    worker_address,
)
from snca_cli.runtime.storage import StoredFolder, content_record, matches_record
from snca_cli.tasks.index.store import graph_names

GRAPH_FILE = "index.hnsw"
GRAPH_MANIFEST = "graph.json"
#: A shard's folder in the work folder, replaced when it does not verify.
GRAPH_OUTPUT = OwnOutput(
    "a shard's graph", lambda folder: unlisted_entry(folder, {GRAPH_FILE, GRAPH_MANIFEST})
)


def shard_key(embeddings: np.ndarray, first_id: int, params: IndexParams) -> str:
    """What a shard's graph depends on, hashed: its vectors, first tile id and parameters."""
    digest = hashlib.sha256(np.ascontiguousarray(embeddings).tobytes())
    digest.update(json.dumps([first_id, asdict(params)]).encode())
    return digest.hexdigest()[:24]


def _stored_graph(folder: StoredFolder) -> bytes | None:
    """The graph file kept in ``folder`` when it matches its manifest; None otherwise."""
    try:
        record = json.loads(folder.read_bytes(GRAPH_MANIFEST))
        data = folder.read_bytes(GRAPH_FILE)
    except (OSError, ValueError):
        return None
    if not matches_record(data, record):
        return None
    return data


@portable_errors
def build_shard_on_worker(
    embeddings: np.ndarray, first_id: int, params: IndexParams, folder: str
) -> tuple[str, bool]:
    """On a worker: the graph of one shard (labels ``first_id``..), kept in ``folder``; return
    the folder and whether a graph built earlier was reused."""
    stored = StoredFolder.of(folder)
    if _stored_graph(stored) is not None:
        return folder, True
    ids = np.arange(first_id, first_id + len(embeddings), dtype=np.int64)
    try:
        graph = build_hnsw(np.ascontiguousarray(embeddings), params, ids)
        with tempfile.TemporaryDirectory(prefix="snca-graph-") as scratch:
            path = Path(scratch) / GRAPH_FILE
            graph.save(path)
            data = path.read_bytes()
    except MemoryError:
        raise SncaError(
            f"the graph of {len(embeddings):,} tiles does not fit in the memory of worker "
            f"{worker_address()}: use a smaller --shard-size"
        ) from None
    record = content_record(data)
    stored.write_files(
        {GRAPH_FILE: data, GRAPH_MANIFEST: json.dumps(record).encode()},
        last=GRAPH_MANIFEST,
        own=GRAPH_OUTPUT,
    )
    return folder, False


def build_graphs_on_cluster(
    directory: Path,
    embeddings: np.ndarray,
    params: IndexParams,
    shard_size: int,
    cluster: ClusterSpec,
    work_dir: StoredFolder,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[int, int]:
    """Build the graph of every shard of ``embeddings`` (rows = tile ids) on ``cluster`` and
    write them into ``directory`` as :func:`snca_cli.tasks.index.build.save_graphs` does;
    return (shards, graphs reused from an earlier run)."""
    ranges = shard_ranges(len(embeddings), shard_size)
    names = graph_names(len(embeddings), shard_size)
    work_dir.make()
    with open_cluster(cluster) as client:
        try:
            futures = []
            for start, stop in ranges:
                part = np.ascontiguousarray(embeddings[start:stop])
                folder = work_dir.child(f"graph-{shard_key(part, start, params)}")
                [data] = client.scatter([part])
                futures.append(
                    client.submit(
                        build_shard_on_worker, data, start, params, str(folder), key=folder.name
                    )
                )
            done = {f.key: f.result() for f in finished_in_turn(futures, cancelled)}
            results = [done[future.key] for future in futures]
        except (SncaError, Cancelled, KeyboardInterrupt):
            cancel_all(client)
            raise
        except Exception as exc:
            cancel_all(client)
            kept = f"the embeddings and the graphs built so far are kept in {work_dir}"
            raise cluster_lost(cluster, exc, kept) from None
    for name, (folder, _) in zip(names, results, strict=True):
        data = _stored_graph(StoredFolder.of(folder))
        if data is None:
            raise SncaError(f"the graph {name} built on the cluster cannot be read back; rerun")
        (directory / name).write_bytes(data)
    return len(ranges), sum(reused for _, reused in results)
