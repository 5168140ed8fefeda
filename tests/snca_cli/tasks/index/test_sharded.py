"""Sharded indexes (several hnswlib graphs, searched by fan-out) and `index merge`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snca_cli.cli.support import parse_count
from snca_cli.errors import SncaError
from snca_cli.runtime.ann import ShardedSearch
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import add_to_index, build_index, merge_indexes
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import read_index
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted_raster


@pytest.fixture
def rasters(tmp_path: Path) -> list[Path]:
    return [
        painted_raster(tmp_path / f"r{i}.tif", colour_grid(3, 4, seed=20 + i), TILE)
        for i in range(3)
    ]


def _answers(index_dir: Path, exact: bool = False) -> list[list[int]]:
    """The 8 most similar tiles of every tile (their similarities checked to be sorted and to
    equal the exact cosine of the embeddings)."""
    with TileIndex.open(index_dir, exact=exact) as index:
        embeddings = np.array(index._opened().embeddings)
        answers = []
        for tile in range(index.count):
            hits = index.search_tile(index.tile_at_row(tile), k=8).hits
            ids = [h.tile.index_row for h in hits]
            cosines = embeddings[ids] @ embeddings[tile]
            np.testing.assert_allclose([h.similarity for h in hits], cosines, atol=1e-5)
            answers.append(ids)
        return answers


def test_a_sharded_index_answers_as_one_graph(
    tmp_path: Path, model: OnnxModel, rasters: list[Path]
) -> None:
    build_index(rasters, model, tmp_path / "one")
    summary = build_index(rasters, model, tmp_path / "four", shard_size=10)
    assert summary.shards == 4 and summary.count == 36
    names = sorted(p.name for p in (tmp_path / "four").glob("*.hnsw"))
    assert names == ["index-000.hnsw", "index-001.hnsw", "index-002.hnsw", "index-003.hnsw"]
    manifest = json.loads((tmp_path / "four" / "manifest.json").read_text())
    assert manifest["index"]["shard_size"] == 10 and set(names) <= set(manifest["files"])
    files = read_index(tmp_path / "four")
    shards = files.load_shards()
    assert [sorted(s.index.get_ids_list()) for s in shards] == [
        list(range(a, min(a + 10, 36))) for a in range(0, 36, 10)
    ]
    with TileIndex.open(tmp_path / "four") as index:
        # looking tiles up needs the tile table only; the first search loads every shard
        tile = index.tile_at_row(5)
        x = (tile.bounds[0] + tile.bounds[2]) / 2
        y = (tile.bounds[1] + tile.bounds[3]) / 2
        assert index.tile_at(x, y).index_row == 5 and index.backend == "hnswlib"
        assert not index.graph_loaded
        index.search_point(x, y, k=3)
        assert index.graph_loaded and isinstance(index._search, ShardedSearch)
    # 36 tiles: every graph is exact, so the fan-out equals one graph and exact search
    assert (
        _answers(tmp_path / "four")
        == _answers(tmp_path / "one")
        == _answers(tmp_path / "one", exact=True)
    )


def test_a_damaged_shard_is_refused_by_name(
    tmp_path: Path, model: OnnxModel, rasters: list[Path]
) -> None:
    build_index(rasters, model, tmp_path / "idx", shard_size=10)
    shard = tmp_path / "idx" / "index-002.hnsw"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(SncaError, match="index-002.hnsw does not match its checksum"):
        read_index(tmp_path / "idx")


def test_add_fills_the_last_shard_then_opens_new_ones(
    tmp_path: Path, model: OnnxModel, rasters: list[Path]
) -> None:
    build_index(rasters[:1], model, tmp_path / "idx", shard_size=10)  # 12 tiles: 10 + 2
    add_to_index(tmp_path / "idx", rasters[1:], model)  # 24 more: 10 + 10 + 10 + 6
    build_index(rasters, model, tmp_path / "once", shard_size=10)
    grown = read_index(tmp_path / "idx")
    assert [len(s) for s in grown.load_shards()] == [10, 10, 10, 6]
    assert _answers(tmp_path / "idx") == _answers(tmp_path / "once")


def test_merge_of_two_indexes_equals_building_once(
    tmp_path: Path, model: OnnxModel, rasters: list[Path]
) -> None:
    build_index(rasters[:2], model, tmp_path / "a")
    build_index(rasters[2:], model, tmp_path / "b")
    build_index(rasters, model, tmp_path / "once", shard_size=16)
    summary = merge_indexes([tmp_path / "a", tmp_path / "b"], tmp_path / "merged", shard_size=16)
    assert summary.count == 36 and summary.rasters == 3 and summary.shards == 3
    once, merged = read_index(tmp_path / "once"), read_index(tmp_path / "merged")
    assert (np.array(once.tiles) == np.array(merged.tiles)).all()
    np.testing.assert_array_equal(once.embeddings, merged.embeddings)
    for name in ("embeddings.npy", "tiles.npy"):
        assert once.manifest.files[name] == merged.manifest.files[name]
    assert once.manifest.rasters == merged.manifest.rasters
    assert _answers(tmp_path / "merged") == _answers(tmp_path / "once")


def test_merge_refuses_another_model_and_a_raster_twice(
    tmp_path: Path, model: OnnxModel, rasters: list[Path]
) -> None:
    other_path = make_band_mean_model(tmp_path / "other.onnx", tile_size=TILE, logit_scale=2.0)
    other = OnnxModel(other_path)
    build_index(rasters[:1], model, tmp_path / "a")
    build_index(rasters[1:2], other, tmp_path / "b")
    build_index(rasters[:1], model, tmp_path / "c")
    with pytest.raises(SncaError, match="another model"):
        merge_indexes([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    with pytest.raises(SncaError, match="is in two of the indexes"):
        merge_indexes([tmp_path / "a", tmp_path / "c"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("text", "count"), [("0", 0), ("5M", 5_000_000), ("250k", 250_000), ("1_000", 1000)]
)
def test_shard_sizes_parse(text: str, count: int) -> None:
    assert parse_count(text, "--shard-size") == count


@pytest.mark.parametrize("text", ["-1", "five", "2.5k1", "0.5"])
def test_bad_shard_sizes_are_refused(text: str) -> None:
    with pytest.raises(SncaError, match="--shard-size"):
        parse_count(text, "--shard-size")
