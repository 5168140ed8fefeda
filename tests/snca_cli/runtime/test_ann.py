"""The nearest-neighbour backends: exact numpy search against brute force, hnswlib against exact."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime import ann
from snca_cli.runtime.ann import ExactSearch, HnswSearch, IndexParams, build_hnsw, normalize


def clustered_unit_vectors(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Unit vectors scattered around ``clusters`` random centres (like real embeddings); the
    centres depend on ``dim`` and ``clusters`` only, so two calls share them."""
    centres = np.random.default_rng([dim, clusters]).normal(size=(clusters, dim))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    return normalize(points)


def brute_force(embeddings: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Every similarity, sorted by (-similarity, id): the reference answer."""
    sims = normalize(queries) @ normalize(embeddings).T
    ids = np.arange(len(embeddings))
    order = np.array([np.lexsort((ids, -row))[:k] for row in sims])
    return order, np.take_along_axis(sims, order, axis=1)


def test_exact_search_on_hand_computed_vectors() -> None:
    stored = normalize(np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32))
    found = ExactSearch(stored).query(np.array([[2.0, 0.0]]), k=4)
    assert found.ids.tolist() == [[0, 2, 1, 3]]
    np.testing.assert_allclose(found.similarities, [[1.0, np.sqrt(0.5), 0.0, -1.0]], atol=1e-6)
    assert found.ids.dtype == np.int64 and found.similarities.dtype == np.float32


def test_exact_search_equals_brute_force_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = clustered_unit_vectors(3000, 16, clusters=20, seed=1)
    queries = clustered_unit_vectors(7, 16, clusters=20, seed=2)
    expected_ids, expected_sims = brute_force(embeddings, queries, k=25)
    monkeypatch.setattr(ann, "EXACT_BLOCK_ELEMENTS", 7 * 500)  # six blocks of 500 rows
    found = ExactSearch(embeddings).query(queries, k=25)
    np.testing.assert_array_equal(found.ids, expected_ids)
    np.testing.assert_allclose(found.similarities, expected_sims, atol=1e-6)


def test_exact_search_breaks_ties_by_smaller_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # ten copies of the same vector spread over blocks: the three smallest ids must win
    stored = np.tile(normalize(np.array([[3.0, 4.0]])), (10, 1))
    stored[::2] = normalize(np.array([[0.0, 1.0]]))
    monkeypatch.setattr(ann, "EXACT_BLOCK_ELEMENTS", 3)
    found = ExactSearch(stored).query(np.array([[3.0, 4.0]]), k=3)
    assert found.ids.tolist() == [[1, 3, 5]]
    np.testing.assert_allclose(found.similarities, [[1.0, 1.0, 1.0]], atol=1e-6)


def test_exact_search_chunk_bound_keeps_ties_and_orders_them_by_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # chunks of 7 rows (an uneven last chunk) in blocks of 300: the chunk maxima bound the
    # top-k; duplicates spread over chunks and blocks tie, shuffled ids decide among them
    embeddings = clustered_unit_vectors(1000, 8, clusters=10, seed=8)
    embeddings[500:1000:37] = embeddings[3]
    queries = np.concatenate([embeddings[[3]], clustered_unit_vectors(5, 8, clusters=10, seed=9)])
    ids = np.random.default_rng(10).permutation(5000)[:1000]
    monkeypatch.setattr(ann, "EXACT_CHUNK_ROWS", 7)
    monkeypatch.setattr(ann, "EXACT_BLOCK_ELEMENTS", len(queries) * 300)
    found = ExactSearch(embeddings, ids=ids).query(queries, k=12)
    sims = normalize(queries) @ embeddings.T
    order = np.array([np.lexsort((ids, -row))[:12] for row in sims])
    np.testing.assert_array_equal(found.ids, ids[order])
    np.testing.assert_allclose(
        found.similarities, np.take_along_axis(sims, order, axis=1), atol=1e-6
    )
    assert found.ids[0].tolist() == sorted(ids[[3, *range(500, 1000, 37)]].tolist())[:12]


def test_exact_search_keeps_the_chunk_maximum_that_bounds_the_top_k(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the best rows sit one per 4-row chunk, so the 3rd best is the 3rd chunk maximum itself;
    # row 9 ties with it inside its chunk and has the smaller id
    angles = np.full(41, np.pi / 2)
    angles[0:40:4] = 0.01 * np.arange(10)
    angles[9] = angles[8]
    stored = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    ids = np.arange(41)[::-1].copy()
    monkeypatch.setattr(ann, "EXACT_CHUNK_ROWS", 4)
    found = ExactSearch(stored, ids=ids).query(np.array([[1.0, 0.0]]), k=3)
    assert found.ids.tolist() == [[ids[0], ids[4], ids[9]]]


def test_exact_search_uses_given_ids_and_caps_k() -> None:
    stored = normalize(np.array([[1.0, 0.0], [0.0, 1.0]]))
    found = ExactSearch(stored, ids=np.array([40, 7])).query(np.array([[0.0, 1.0]]), k=10)
    assert found.ids.tolist() == [[7, 40]]


def test_query_of_the_wrong_dimension_is_refused() -> None:
    with pytest.raises(SncaError, match="holds 2-d"):
        ExactSearch(normalize(np.eye(2))).query(np.ones((1, 3)), k=1)


def test_hnsw_recall_against_exact_search() -> None:
    embeddings = clustered_unit_vectors(5000, 32, clusters=50, seed=3)
    queries = clustered_unit_vectors(200, 32, clusters=50, seed=4)
    exact = ExactSearch(embeddings).query(queries, k=10)
    graph = build_hnsw(embeddings, IndexParams(M=16, ef_construction=200, ef=64))
    approximate = graph.query(queries, k=10)
    hits = sum(len(set(a) & set(e)) for a, e in zip(approximate.ids, exact.ids, strict=True))
    assert hits / exact.ids.size >= 0.98
    # a neighbour both found has the same similarity in both backends
    for a_ids, a_sims, e_ids, e_sims in zip(
        approximate.ids, approximate.similarities, exact.ids, exact.similarities, strict=True
    ):
        common = {i: s for i, s in zip(e_ids, e_sims, strict=True)}
        for i, s in zip(a_ids, a_sims, strict=True):
            if i in common:
                assert abs(s - common[i]) < 1e-5


def test_hnsw_finds_exact_answers_on_a_small_index() -> None:
    embeddings = clustered_unit_vectors(300, 8, clusters=5, seed=5)
    graph = build_hnsw(embeddings, IndexParams(M=16, ef_construction=200, ef=300))
    found = graph.query(embeddings[:5], k=300)
    expected = ExactSearch(embeddings).query(embeddings[:5], k=300)
    np.testing.assert_allclose(found.similarities, expected.similarities, atol=1e-5)
    assert found.ids[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_hnsw_grows_and_saves_and_loads(tmp_path: Path) -> None:
    embeddings = clustered_unit_vectors(120, 8, clusters=4, seed=6)
    params = IndexParams(M=8, ef_construction=100, ef=200)
    graph = HnswSearch.create(8, params, capacity=10)
    graph.add(embeddings[:100], np.arange(100))
    graph.add(embeddings[100:], np.arange(100, 120))
    assert len(graph) == 120
    path = tmp_path / "index.hnsw"
    graph.save(path)
    loaded = HnswSearch.load(path, dim=8, params=params, labels=range(120))
    found = loaded.query(embeddings[[110, 3]], k=1)
    assert found.ids[:, 0].tolist() == [110, 3]
    np.testing.assert_allclose(found.similarities, 1.0, atol=1e-5)


def test_hnsw_load_refuses_corrupt_files(tmp_path: Path) -> None:
    embeddings = clustered_unit_vectors(50, 8, clusters=2, seed=7)
    path = tmp_path / "index.hnsw"
    build_hnsw(embeddings, IndexParams()).save(path)
    with pytest.raises(SncaError, match="holds 50 vectors, the manifest says 60"):
        HnswSearch.load(path, dim=8, params=IndexParams(), labels=range(60))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(SncaError, match="corrupt"):
        HnswSearch.load(path, dim=8, params=IndexParams(), labels=range(50))
    with pytest.raises(SncaError, match="missing"):
        HnswSearch.load(tmp_path / "absent.hnsw", dim=8, params=IndexParams(), labels=range(50))


@pytest.mark.parametrize(("count", "M"), [(0, 16), (1, 2), (1000, 2), (700, 5), (300, 48)])
def test_the_graph_check_accepts_the_graphs_hnswlib_writes(
    tmp_path: Path, count: int, M: int
) -> None:
    """Empty, one-element and many-level graphs (M=2 reaches about ten levels) with the labels
    of a shard that starts at tile 50."""
    embeddings = clustered_unit_vectors(count, 6, clusters=3, seed=count)
    params = IndexParams(M=M, ef_construction=40)
    labels = range(50, 50 + count)
    build_hnsw(embeddings, params, np.arange(50, 50 + count)).save(tmp_path / "g.hnsw")
    loaded = HnswSearch.load(tmp_path / "g.hnsw", dim=6, params=params, labels=labels)
    assert len(loaded) == count
    if count:
        assert loaded.query(embeddings[-1:], k=1).ids.tolist() == [[labels[-1]]]


def test_graph_errors_name_the_file_shown(tmp_path: Path) -> None:
    """A graph loaded through another path (``/proc/self/fd/N``) is named by its real one."""
    build_hnsw(clustered_unit_vectors(30, 8, clusters=2, seed=3), IndexParams()).save(
        tmp_path / "g.hnsw"
    )
    (tmp_path / "link.hnsw").symlink_to(tmp_path / "g.hnsw")
    with pytest.raises(SncaError, match=r"real\.hnsw is corrupt: its labels run from 0 to 29"):
        HnswSearch.load(
            tmp_path / "link.hnsw", 8, IndexParams(), range(100, 130), shown=tmp_path / "real.hnsw"
        )


def test_index_params_are_checked() -> None:
    with pytest.raises(SncaError, match="--M"):
        IndexParams(M=1)
    with pytest.raises(SncaError, match="--ef"):
        IndexParams(ef=0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"M": 1}, "--M must be 2 to 256"),
        ({"M": 100_000}, "--M must be 2 to 256"),
        ({"ef": 0}, "--ef must be 1 to 100,000"),
        ({"ef_construction": 10**9}, "--ef-construction must be 1 to 100,000"),
    ],
)
def test_index_parameters_outside_their_range_are_refused(params: dict, message: str) -> None:
    with pytest.raises(SncaError, match=message):
        IndexParams(**params)


def _fan_out_over_four_shards(shard: int) -> None:
    """``4 * shard`` clustered 16-d vectors in 4 shards of ``shard``: recall@10 of the merged
    fan-out answers against exact search, and the merge itself (exact per shard = exact)."""
    count = 4 * shard
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(200, 16))
    noise = 0.3 * rng.normal(size=(count, 16))
    vectors = normalize(centres[rng.integers(0, 200, count)] + noise)
    params = IndexParams(M=16, ef_construction=100, ef=128)
    ranges = ann.shard_ranges(len(vectors), shard)
    assert ranges == [(i * shard, (i + 1) * shard) for i in range(4)]
    shards = [build_hnsw(vectors[a:b], params, np.arange(a, b)) for a, b in ranges]
    sharded = ann.ShardedSearch(shards)
    assert len(sharded) == count
    # queries like the stored vectors (a tile's neighbours are searched), none of them stored
    queries = normalize(centres[rng.integers(0, 200, 500)] + 0.3 * rng.normal(size=(500, 16)))
    truth = ExactSearch(vectors).query(queries, 10)
    found = sharded.query(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.ids, truth.ids, strict=True)])
    assert recall >= 0.99, recall
    assert (np.diff(found.similarities, axis=1) <= 1e-6).all()  # merged best first
    # exact shards merged give exactly the exact answer: the merge loses nothing
    exact_shards = [ExactSearch(vectors[a:b], np.arange(a, b)) for a, b in ranges]
    merged = [s.query(queries, 10) for s in exact_shards]
    ids, sims = ann._top_k_rows(
        np.concatenate([m.similarities for m in merged], axis=1),
        np.concatenate([m.ids for m in merged], axis=1),
        10,
    )
    np.testing.assert_array_equal(ids, truth.ids)


def test_fan_out_over_four_small_shards_keeps_recall_at_ten_above_0_99() -> None:
    """The fast lane's fan-out: 4 shards of 2,500."""
    _fan_out_over_four_shards(2_500)


@pytest.mark.slow
def test_fan_out_over_four_shards_keeps_recall_at_ten_above_0_99() -> None:
    """At scale: 200,000 vectors in 4 shards of 50,000."""
    _fan_out_over_four_shards(50_000)


def test_shard_ranges_cover_every_id_once() -> None:
    assert ann.shard_ranges(10, 0) == [(0, 10)]
    assert ann.shard_ranges(10, 10) == [(0, 10)]
    assert ann.shard_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]


class _Spy:
    """An hnswlib graph whose queries are noted: (the thread that asked, its num_threads)."""

    def __init__(self, index: object, calls: list[tuple[int, int]]) -> None:
        self._index, self._calls = index, calls

    def __getattr__(self, name: str) -> object:
        return getattr(self._index, name)

    def knn_query(self, data: np.ndarray, k: int, num_threads: int = -1) -> tuple:
        self._calls.append((threading.get_ident(), num_threads))
        return self._index.knn_query(data, k=k, num_threads=num_threads)


def test_shards_searched_at_once_answer_as_one_after_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """5 shards (dealt unevenly to 2 and 3 threads), every vector stored twice in two shards:
    the same ids and similarities, ties broken by the smaller id, whatever the threads."""
    vectors = clustered_unit_vectors(300, 16, clusters=10, seed=3)
    stored = np.concatenate([vectors, vectors])  # row i and row 300 + i are the same vector
    params = IndexParams(M=16, ef_construction=100, ef=64)
    ranges = ann.shard_ranges(len(stored), 120)
    assert len(ranges) == 5
    calls: list[tuple[int, int]] = []
    shards = []
    for a, b in ranges:
        shard = build_hnsw(stored[a:b], params, np.arange(a, b))
        shard.index = _Spy(shard.index, calls)
        shards.append(shard)
    queries = clustered_unit_vectors(40, 16, clusters=10, seed=4)
    one_by_one = ann.ShardedSearch(shards, threads=1)
    alone = one_by_one.query(queries, 10)
    assert {threads for _, threads in calls} == {-1}  # hnswlib's own threads
    assert (alone.ids >= 300).any() and (alone.ids < 300).any()
    pairs = alone.ids % 300
    assert (pairs[:, ::2] == pairs[:, 1::2]).all()  # each vector found twice, smaller id first
    assert (alone.ids[:, ::2] < alone.ids[:, 1::2]).all()
    single = one_by_one.query(queries[:1], 10)
    caller = threading.get_ident()
    for threads in (2, 3, 5):
        calls.clear()
        together = ann.ShardedSearch(shards, threads=threads)
        for batch, expected in ((queries, alone), (queries[:1], single)):
            found = together.query(batch, 10)
            np.testing.assert_array_equal(found.ids, expected.ids)
            np.testing.assert_array_equal(found.similarities, expected.similarities)
        assert {hnswlib_threads for _, hnswlib_threads in calls} == {1}  # one each
        asked = {thread for thread, _ in calls}
        assert caller in asked and len(asked) >= 2  # this thread and the pool's
    monkeypatch.setattr(ann, "usable_cores", lambda: 2)
    assert ann.ShardedSearch(shards).threads == 2  # bounded by the cores
    assert ann.ShardedSearch(shards[:1]).threads == 1
    with pytest.raises(SncaError, match="threads must be 0 or more"):
        ann.ShardedSearch(shards, threads=-1)
