"""Nearest-neighbour search over unit embeddings: an hnswlib cosine graph, or exact numpy search.

Both backends answer :meth:`query` with the same :class:`Neighbours` (ids and cosine
similarities, best first, ties broken by the smaller id). The exact backend is used when
hnswlib is not importable (e.g. inside a QGIS Python without a compiler) or when asked for.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from snca_cli.errors import SncaError
from snca_cli.runtime.cores import usable_cores
from snca_cli.runtime.hnsw_file import GraphFileError, check_graph_file

#: Similarities the exact search holds at once (queries x stored rows): bounds its memory.
EXACT_BLOCK_ELEMENTS = 1 << 24
#: Stored rows per chunk of the exact search's top-k: only chunks whose best similarity reaches
#: the k-th best chunk maximum are read twice.
EXACT_CHUNK_ROWS = 256


#: Largest hnswlib M (links per node; hnswlib suggests 2-100) and search width.
MAX_M = 256
MAX_EF = 100_000


@dataclass(frozen=True)
class IndexParams:
    """hnswlib graph parameters: ``M`` links per node, ``ef_construction`` and query-time ``ef``.

    Larger values give better recall for more memory and build time; ``ef`` can be changed
    at any time (it only affects queries). Queries always use at least ``k`` for ``ef``.
    """

    M: int = 16
    ef_construction: int = 200
    ef: int = 128

    def __post_init__(self) -> None:
        # upper bounds: the graph's memory grows with M, build and query time with the widths
        for name, value, low, high in (
            ("--M", self.M, 2, MAX_M),
            ("--ef-construction", self.ef_construction, 1, MAX_EF),
            ("--ef", self.ef, 1, MAX_EF),
        ):
            if not low <= value <= high:
                raise SncaError(
                    f"{name} must be {low} to {high:,} (got {value}); larger values only cost "
                    "memory and time"
                )


@dataclass
class Neighbours:
    """The answer to a batch of queries: ``ids`` (N x k, int64) and ``similarities`` (N x k,
    float32 cosine similarity in [-1, 1]), each row sorted from the most similar."""

    ids: np.ndarray
    similarities: np.ndarray

    @classmethod
    def none(cls, queries: int) -> Neighbours:
        """No neighbour for each of ``queries`` queries (an empty index, or k = 0)."""
        empty = np.empty((queries, 0))
        return cls(empty.astype(np.int64), empty.astype(np.float32))


class NeighbourSearch(Protocol):
    """What both backends offer."""

    name: str

    def __len__(self) -> int: ...

    def query(self, vectors: np.ndarray, k: int) -> Neighbours: ...


def hnswlib_available() -> bool:
    """Whether the hnswlib extension can be imported."""
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return False
    return True


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (zero rows stay zero)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.sqrt((vectors.astype(np.float64) ** 2).sum(axis=1, keepdims=True))
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _check_queries(vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise SncaError(f"query vectors have shape {vectors.shape}; the index holds {dim}-d")
    return vectors


def _top_k_rows(similarities: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (similarity, id) of each row, sorted by similarity then id."""
    if similarities.shape[1] > k:
        # keep every candidate tied with the k-th best so that ties resolve by the smaller id
        part = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(similarities, part, axis=1).min(axis=1, keepdims=True)
        out_ids = np.empty((similarities.shape[0], k), dtype=np.int64)
        out_sims = np.empty((similarities.shape[0], k), dtype=np.float32)
        for row in range(similarities.shape[0]):
            keep = np.flatnonzero(similarities[row] >= kth[row])
            order = np.lexsort((ids[row, keep], -similarities[row, keep]))[:k]
            out_ids[row] = ids[row, keep[order]]
            out_sims[row] = similarities[row, keep[order]]
        return out_ids, out_sims
    order = np.lexsort((ids, -similarities), axis=1)
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(similarities, order, axis=1)


def _block_candidates(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every entry of ``sims`` (stored rows x queries) at least as similar as its query's k-th
    best, as (query, row, similarity) arrays: at least ``min(k, rows)`` per query.

    The k-th largest maximum of the ``EXACT_CHUNK_ROWS``-row chunks is a lower bound of the
    k-th best (the maxima are k distinct entries), so only the chunks that reach it are read
    again; entries tied with the k-th best all stay, for the merge to order them by id.
    """
    rows, queries = sims.shape
    chunk = EXACT_CHUNK_ROWS
    full = rows // chunk
    maxima = sims[: full * chunk].reshape(full, chunk, queries).max(axis=1)
    if full * chunk < rows:
        maxima = np.concatenate([maxima, sims[full * chunk :].max(axis=0, keepdims=True)])
    chunks = len(maxima)
    if chunks > k:
        bound = np.partition(maxima, chunks - k, axis=0)[chunks - k]
    else:
        bound = np.full(queries, -np.inf, dtype=sims.dtype)
    chunk_index, query = np.nonzero(maxima >= bound)
    row = chunk_index[:, None] * chunk + np.arange(chunk)
    values = sims[np.minimum(row, rows - 1), query[:, None]]
    keep = (row < rows) & (values >= bound[query][:, None])
    return np.broadcast_to(query[:, None], row.shape)[keep], row[keep], values[keep]


def _merge_top_k(
    query: np.ndarray, ids: np.ndarray, sims: np.ndarray, queries: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best candidates of each of ``queries`` queries (``queries`` x k ids and
    similarities), by similarity then the smaller id; each query needs at least k candidates."""
    order = np.lexsort((ids, -sims, query))
    counts = np.bincount(query, minlength=queries)
    take = order[(np.cumsum(counts) - counts)[:, None] + np.arange(k)]
    return ids[take], sims[take]


class ExactSearch:
    """Brute-force cosine search: the product of every embedding and the normalized queries."""

    name = "exact"

    def __init__(self, embeddings: np.ndarray, ids: np.ndarray | None = None) -> None:
        """``embeddings``: N x D unit vectors (a memory map is fine); ``ids`` default 0..N-1."""
        if embeddings.ndim != 2:
            raise SncaError(f"embeddings must be N x D, got shape {embeddings.shape}")
        self.embeddings = embeddings
        self.ids = (
            np.arange(len(embeddings), dtype=np.int64)
            if ids is None
            else np.asarray(ids, dtype=np.int64)
        )
        if len(self.ids) != len(embeddings):
            raise SncaError(f"{len(self.ids)} ids for {len(embeddings)} embeddings")

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def query(self, vectors: np.ndarray, k: int) -> Neighbours:
        """The k most similar stored vectors of each query (k is capped at the index size).

        One matrix product per block of stored rows (``EXACT_BLOCK_ELEMENTS`` similarities),
        whose candidates are merged into the running top-k.
        """
        queries = normalize(_check_queries(vectors, self.dim))
        k = min(int(k), len(self))
        if k < 1:
            return Neighbours.none(len(queries))
        count = len(queries)
        best_ids = np.empty((count, 0), dtype=np.int64)
        best_sims = np.empty((count, 0), dtype=np.float32)
        # the first block holds at least k rows, so every query has k candidates from then on
        rows = max(4 * k, EXACT_BLOCK_ELEMENTS // max(1, count))
        for start in range(0, len(self), rows):
            block = np.asarray(self.embeddings[start : start + rows], dtype=np.float32)
            query, row, sims = _block_candidates(block @ queries.T, k)
            best_ids, best_sims = _merge_top_k(
                np.concatenate([np.repeat(np.arange(count), best_ids.shape[1]), query]),
                np.concatenate([best_ids.ravel(), self.ids[start + row]]),
                np.concatenate([best_sims.ravel(), sims]),
                count,
                k,
            )
        return Neighbours(ids=best_ids, similarities=best_sims)


class HnswSearch:
    """An hnswlib graph in cosine space; labels are the tile ids."""

    name = "hnswlib"

    def __init__(self, index: object, params: IndexParams) -> None:
        self.index = index
        self.params = params

    @classmethod
    def create(cls, dim: int, params: IndexParams, capacity: int, seed: int = 100) -> HnswSearch:
        """An empty graph with room for ``capacity`` vectors."""
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=int(dim))
        index.init_index(
            max_elements=max(1, int(capacity)),
            M=params.M,
            ef_construction=params.ef_construction,
            random_seed=seed,
        )
        index.set_ef(params.ef)
        return cls(index, params)

    @classmethod
    def load(
        cls,
        path: Path,
        dim: int,
        params: IndexParams,
        labels: range,
        shown: Path | None = None,
    ) -> HnswSearch:
        """Load a saved graph that holds the vectors labelled ``labels`` (tile ids).

        Its structure is checked first (:func:`check_graph_file`), so hnswlib never reads a
        file that could make it crash. Errors name ``shown`` (default ``path``): the file's
        real path where ``path`` is a ``/proc/self/fd`` link to it.
        """
        import hnswlib

        path = Path(path)
        shown = path if shown is None else Path(shown)
        if not path.is_file():
            raise SncaError(f"index file {shown.name} is missing from {shown.parent}")
        try:
            with open(path, "rb") as handle:
                check_graph_file(handle, dim, params.M, params.ef_construction, labels)
        except GraphFileError as exc:
            raise SncaError(f"index file {shown} is corrupt: {exc}") from None
        except OSError as exc:
            raise SncaError(f"cannot read index file {shown}: {exc.strerror or exc}") from None
        index = hnswlib.Index(space="cosine", dim=int(dim))
        try:
            index.load_index(str(path), max_elements=max(1, len(labels)))
        except RuntimeError as exc:
            raise SncaError(f"index file {shown} is corrupt ({exc})") from None
        count = index.get_current_count()
        if count != len(labels) or index.index_file_size() != path.stat().st_size:
            raise SncaError(
                f"index file {shown} is corrupt: it holds {count} vectors, the manifest says "
                f"{len(labels)}"
            )
        index.set_ef(params.ef)
        return cls(index, params)

    @property
    def dim(self) -> int:
        return int(self.index.dim)

    def __len__(self) -> int:
        return int(self.index.get_current_count())

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors under the given ids, growing the graph when it is full."""
        vectors = _check_queries(vectors, self.dim)
        needed = len(self) + len(vectors)
        if needed > self.index.get_max_elements():
            self.index.resize_index(needed)
        self.index.add_items(vectors, np.asarray(ids, dtype=np.int64))

    def save(self, path: Path) -> None:
        self.index.save_index(str(path))

    def query(self, vectors: np.ndarray, k: int, threads: int = -1) -> Neighbours:
        """The k approximate nearest neighbours of each query (k is capped at the index size);
        hnswlib searches a batch of queries on ``threads`` threads (-1: every core; a batch of
        under 4 queries a thread takes one)."""
        queries = _check_queries(vectors, self.dim)
        k = min(int(k), len(self))
        if k < 1:
            return Neighbours.none(len(queries))
        self.index.set_ef(max(self.params.ef, k))
        labels, distances = self.index.knn_query(queries, k=k, num_threads=threads)
        similarities = (1.0 - distances).astype(np.float32)
        ids, similarities = _top_k_rows(similarities, labels.astype(np.int64), k)
        return Neighbours(ids=ids, similarities=similarities)


def build_hnsw(
    embeddings: np.ndarray, params: IndexParams, ids: np.ndarray | None = None
) -> HnswSearch:
    """A new graph holding ``embeddings`` (labels ``ids``, default 0..N-1)."""
    ids = np.arange(len(embeddings), dtype=np.int64) if ids is None else ids
    search = HnswSearch.create(embeddings.shape[1], params, capacity=len(embeddings))
    if len(embeddings):
        search.add(embeddings, ids)
    return search


class ShardedSearch:
    """Several hnswlib graphs searched together: every shard answers the ``k`` best of its
    own tiles (labels are global tile ids), and the answers are merged into the overall top-k,
    ties broken by the smaller id as in one graph. Recall equals that of the shards' graphs: a
    true neighbour is missed only when its own shard misses it.

    The shards are searched at once on ``threads`` threads (hnswlib releases the GIL while it
    searches), each shard's search on one of them; the answers are merged in shard order, so
    they are those of searching the shards one after another.
    """

    name = "hnswlib"

    def __init__(self, shards: list[HnswSearch], threads: int = 0) -> None:
        """``threads``: shards searched at once (0: one per shard, at most the usable cores;
        1: one after another, each with hnswlib's own threads)."""
        if not shards:
            raise SncaError("a sharded index needs at least one shard")
        if threads < 0:
            raise SncaError(f"threads must be 0 or more (got {threads})")
        self.shards = shards
        self.threads = min(len(shards), threads or usable_cores())
        self._pool: ThreadPoolExecutor | None = None  # started by the first parallel query

    @property
    def dim(self) -> int:
        return self.shards[0].dim

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def query(self, vectors: np.ndarray, k: int) -> Neighbours:
        """The k approximate nearest neighbours of each query over every shard."""
        queries = _check_queries(vectors, self.dim)
        k = min(int(k), len(self))
        if k < 1:
            return Neighbours.none(len(queries))
        answers = self._ask([shard for shard in self.shards if len(shard)], queries, k)
        ids = np.concatenate([a.ids for a in answers], axis=1)
        sims = np.concatenate([a.similarities for a in answers], axis=1)
        ids, sims = _top_k_rows(sims, ids, k)
        return Neighbours(ids=ids, similarities=sims)

    def _ask(self, shards: list[HnswSearch], queries: np.ndarray, k: int) -> list[Neighbours]:
        """Every shard's answer, in shard order: the shards dealt round-robin to ``threads``
        threads (this one and the pool's), each answering its own one after another on one
        hnswlib thread; or all of them here, one after another."""
        threads = min(self.threads, len(shards))
        if threads < 2:
            return [shard.query(queries, k) for shard in shards]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="snca-shard")

        def ask(group: list[HnswSearch]) -> list[Neighbours]:
            return [shard.query(queries, k, threads=1) for shard in group]

        groups = [shards[i::threads] for i in range(threads)]
        later = [self._pool.submit(ask, group) for group in groups[1:]]
        found = [ask(groups[0]), *(future.result() for future in later)]
        return [found[i % threads][i // threads] for i in range(len(shards))]


def shard_ranges(count: int, shard_size: int) -> list[tuple[int, int]]:
    """The tile id ranges ``[start, stop)`` of the shards of ``count`` tiles: consecutive ids,
    ``shard_size`` per shard (0: one shard holding everything)."""
    if shard_size <= 0 or count <= shard_size:
        return [(0, count)]
    return [(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]
