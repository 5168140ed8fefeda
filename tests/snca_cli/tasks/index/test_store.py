"""The index files of snca_cli.tasks.index.store: corrupt or inconsistent indexes are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import add_to_index, build_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import (
    EMBEDDINGS_NAME,
    GRAPH_NAME,
    MANIFEST_NAME,
    TILES_NAME,
)
from tests.helpers.index_data import (
    TILE,
    colour_grid,
    resign_index,
)
from tests.helpers.rasters import painted_raster


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / MANIFEST_NAME).write_text("{not json"), "manifest.json is corrupt"),
        (lambda d: (d / MANIFEST_NAME).unlink(), "is not an snca index"),
        (lambda d: (d / GRAPH_NAME).unlink(), "index.hnsw is missing"),
        (
            lambda d: (d / GRAPH_NAME).write_bytes((d / GRAPH_NAME).read_bytes()[:-100]),
            "index.hnsw has .* bytes, the manifest says",
        ),
        (lambda d: np.save(d / TILES_NAME, np.load(d / TILES_NAME)[:-1]), "tiles.npy has"),
        (lambda d: (d / EMBEDDINGS_NAME).write_bytes(b"junk"), "embeddings.npy has 4 bytes"),
        (
            lambda d: (
                np.save(d / TILES_NAME, np.load(d / TILES_NAME)[:-1]),
                resign_index(d),
            ),
            "counts disagree",
        ),
        (
            lambda d: ((d / EMBEDDINGS_NAME).write_bytes(b"junk"), resign_index(d)),
            "embeddings.npy has a .npy header snca cannot read",
        ),
        (lambda d: (d / EMBEDDINGS_NAME).unlink(), "embeddings.npy is missing"),
    ],
)
def test_a_corrupt_index_is_refused(
    tmp_path: Path, model: OnnxModel, raster: Path, damage, message: str
) -> None:
    build_index([raster], model, tmp_path / "idx")
    damage(tmp_path / "idx")
    with pytest.raises(SncaError, match=message):
        TileIndex.open(tmp_path / "idx")
    with pytest.raises(SncaError, match=message):
        add_to_index(tmp_path / "idx", [tmp_path / "any.tif"], model)


def test_a_graph_that_disagrees_with_the_manifest_is_refused(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    build_index([raster], model, tmp_path / "idx")
    small = painted_raster(tmp_path / "small.tif", colour_grid(1, 2, seed=2), TILE)
    build_index([small], model, tmp_path / "small")
    shutil.copy(tmp_path / "small" / GRAPH_NAME, tmp_path / "idx" / GRAPH_NAME)
    size = (tmp_path / "idx" / GRAPH_NAME).stat().st_size
    resign_index(tmp_path / "idx", lambda m: m["index"].update(graph_bytes=size))
    index = TileIndex.open(tmp_path / "idx")  # the graph is loaded by the first search
    assert index.tile(11).tile_id == 11
    with pytest.raises(SncaError, match="holds 2 vectors, the manifest says 12"):
        index.search_tile_id(0)
    assert TileIndex.open(tmp_path / "idx", exact=True).search_tile_id(0, k=11).hits
