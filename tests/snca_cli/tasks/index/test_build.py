"""`snca index build/add` (snca_cli.tasks.index.build): the index files, id continuity, atomicity,
refusals.

The rasters are painted in known colours and embedded with the band-mean model, so every
tile's embedding (its normalized colour), class (its brightest band) and score are known.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.runtime.ann import IndexParams
from snca_cli.runtime.onnx_model import OnnxModel, file_sha256
from snca_cli.tasks.index import build as build_module
from snca_cli.tasks.index import store as store_module
from snca_cli.tasks.index.build import add_to_index, build_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import (
    EMBEDDINGS_NAME,
    GRAPH_NAME,
    MANIFEST_NAME,
    TABLE_NAME,
    TILES_NAME,
    read_index,
)
from snca_cli.tasks.units import RunOptions
from tests.helpers.gpkg import GPKG_APPLICATION_ID, gpkg_version
from tests.helpers.index_data import (
    TILE,
    colour_grid,
    expected_classes,
    expected_embeddings,
    read_layer,
)
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import ORIGIN, PIXEL, painted_raster, utm_transform, write_raster


def test_build_writes_every_tile_with_its_exact_embedding_class_and_geometry(
    tmp_path: Path, model: OnnxModel, raster: Path, colours: np.ndarray
) -> None:
    params = IndexParams(M=8, ef_construction=50, ef=20)
    summary = build_index([raster], model, tmp_path / "idx", params=params)
    assert (summary.count, summary.added, summary.skipped, summary.rasters) == (12, 12, 0, 1)
    assert summary.ann == "hnswlib" and summary.embedding_dim == 3

    manifest = json.loads((tmp_path / "idx" / MANIFEST_NAME).read_text())
    assert manifest["model"]["sha256"] == file_sha256(model.path)
    assert manifest["model"]["embedding_dim"] == 3 and manifest["model"]["tile_size"] == TILE
    assert manifest["index"] == {
        "library": "hnswlib",
        "space": "cosine",
        "M": 8,
        "ef_construction": 50,
        "ef": 20,
        "count": 12,
        "graph_bytes": (tmp_path / "idx" / GRAPH_NAME).stat().st_size,
        "shard_size": 0,
    }
    assert manifest["tiling"]["overlap"] == 0.0 and manifest["tiling"]["edge"] == "shift"
    (entry,) = manifest["rasters"]
    assert entry["path"] == str(raster.resolve())
    assert entry["relative_path"] == "../painted.tif"
    assert entry["epsg"] == 32633 and "UTM zone 33N" in entry["crs_wkt"]
    assert entry["transform"] == [PIXEL, 0.0, ORIGIN[0], 0.0, -PIXEL, ORIGIN[1]]
    assert (entry["width"], entry["height"], entry["first_tile_id"], entry["tile_count"]) == (
        32,
        24,
        0,
        12,
    )

    embeddings = np.load(tmp_path / "idx" / EMBEDDINGS_NAME)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, expected_embeddings(colours), atol=1e-6)

    tiles = np.load(tmp_path / "idx" / TILES_NAME)
    classes, scores = expected_classes(colours)
    np.testing.assert_array_equal(tiles["class_index"], classes)
    np.testing.assert_allclose(tiles["score"], scores, atol=1e-6)
    np.testing.assert_array_equal(tiles["col_off"], np.tile(np.arange(4) * TILE, 3))
    np.testing.assert_array_equal(tiles["row_off"], np.repeat(np.arange(3) * TILE, 4))
    np.testing.assert_array_equal(tiles["grid_id"], np.arange(12))
    minx = ORIGIN[0] + tiles["col_off"] * PIXEL
    maxy = ORIGIN[1] - tiles["row_off"] * PIXEL
    np.testing.assert_array_equal(tiles["minx"], minx)
    np.testing.assert_array_equal(tiles["maxy"], maxy)
    np.testing.assert_array_equal(tiles["maxx"] - tiles["minx"], TILE * PIXEL)

    fields, bounds = read_layer(tmp_path / "idx" / TABLE_NAME, "tiles_epsg_32633")
    np.testing.assert_array_equal(fields["tile_id"], np.arange(12))
    assert list(fields["class"]) == [f"class_{c}" for c in classes]
    np.testing.assert_array_equal(bounds[:, 0], minx)
    np.testing.assert_array_equal(bounds[:, 3], maxy)
    assert not list(tmp_path.glob(".*")), "no staging folder or lock file is left"


def test_tiles_without_enough_valid_pixels_are_not_indexed(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray
) -> None:
    from tests.helpers.rasters import painted

    data = painted(colours, TILE)
    data[:, :TILE, :TILE] = 0  # tile 0 all no-data
    data[:, TILE : 2 * TILE, 3 * TILE : 3 * TILE + 6] = 0  # tile 7: 75 % no-data
    path = write_raster(tmp_path / "holes.tif", data, nodata=0)
    summary = build_index([path], model, tmp_path / "idx")
    assert (summary.count, summary.skipped) == (10, 2)
    tiles = read_index(tmp_path / "idx").tiles
    assert tiles["grid_id"].tolist() == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11]


def test_rasters_in_two_crs_get_one_layer_each_and_consecutive_ids(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    other = painted_raster(
        tmp_path / "other.tif",
        colour_grid(2, 2, seed=8),
        TILE,
        crs="EPSG:32632",
        transform=utm_transform(origin=(400000.0, 5100000.0)),
    )
    build_index([raster, other], model, tmp_path / "idx")
    files = read_index(tmp_path / "idx")
    assert [(r.first_tile_id, r.tile_count, r.layer) for r in files.manifest.rasters] == [
        (0, 12, "tiles_epsg_32633"),
        (12, 4, "tiles_epsg_32632"),
    ]
    fields, bounds = read_layer(tmp_path / "idx" / TABLE_NAME, "tiles_epsg_32632")
    np.testing.assert_array_equal(fields["index_row"], [12, 13, 14, 15])
    np.testing.assert_array_equal(fields["tile_id"], [0, 1, 2, 3])  # the raster's grid ids
    np.testing.assert_array_equal(fields["row"], [0, 0, 1, 1])
    np.testing.assert_array_equal(fields["col"], [0, 1, 0, 1])
    assert gpkg_version(tmp_path / "idx" / TABLE_NAME) == (GPKG_APPLICATION_ID, 10200)
    assert bounds[0].tolist() == [
        400000.0,
        5100000.0 - TILE * PIXEL,
        400000.0 + TILE * PIXEL,
        5100000.0,
    ]


def test_progress_runs_over_the_tiles_of_all_rasters(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    other = painted_raster(tmp_path / "other.tif", colour_grid(2, 2, seed=8), TILE)
    calls: list[tuple[int, int]] = []
    build_index(
        [raster, other],
        model,
        tmp_path / "idx",
        batch_size=5,
        run=RunOptions(progress=lambda done, total: calls.append((done, total))),
    )
    assert {total for _, total in calls} == {16}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 16 and 12 in done


def test_add_continues_ids_and_equals_a_full_build(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    second = painted_raster(tmp_path / "second.tif", colour_grid(2, 3, seed=9), TILE)
    build_index([raster, second], model, tmp_path / "full")
    build_index([raster], model, tmp_path / "grown")
    summary = add_to_index(tmp_path / "grown", [second], model)
    assert (summary.count, summary.added, summary.rasters) == (18, 6, 1)

    full, grown = read_index(tmp_path / "full"), read_index(tmp_path / "grown")
    np.testing.assert_array_equal(grown.tiles, full.tiles)
    np.testing.assert_array_equal(grown.embeddings, full.embeddings)
    assert grown.manifest.rasters == full.manifest.rasters
    assert grown.manifest.rasters[1].first_tile_id == 12
    assert sorted(grown.load_graph().index.get_ids_list()) == list(range(18))
    fields, _ = read_layer(tmp_path / "grown" / TABLE_NAME, "tiles_epsg_32633")
    np.testing.assert_array_equal(fields["index_row"], np.arange(18))
    np.testing.assert_array_equal(fields["tile_id"], [*range(12), *range(6)])
    for row in (0, 13):
        full_index, grown_index = (
            TileIndex.open(tmp_path / "full"),
            TileIndex.open(tmp_path / "grown"),
        )
        a = full_index.search_tile(full_index.tile_at_row(row), k=17)
        b = grown_index.search_tile(grown_index.tile_at_row(row), k=17)
        assert [h.tile.index_row for h in a.hits] == [h.tile.index_row for h in b.hits]


def test_add_refuses_a_raster_already_indexed_and_build_one_given_twice(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    with pytest.raises(SncaError, match="given twice"):
        build_index([raster, raster], model, tmp_path / "idx")
    build_index([raster], model, tmp_path / "idx")
    with pytest.raises(SncaError, match="already in the index"):
        add_to_index(tmp_path / "idx", [raster], model)


def test_add_refuses_other_tiling_options(tmp_path: Path, model: OnnxModel, raster: Path) -> None:
    build_index([raster], model, tmp_path / "idx")
    with pytest.raises(SncaError, match="would mix tilings"):
        add_to_index(tmp_path / "idx", [raster], model, options=TilingOptions(overlap=2))


class Boom(Exception):
    pass


def test_a_failed_build_leaves_nothing(
    tmp_path: Path, model: OnnxModel, raster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise Boom("disk full")

    monkeypatch.setattr(store_module, "write_tile_table", fail)
    with pytest.raises(Boom):
        build_index([raster], model, tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["band_mean.onnx", "painted.tif"]


def test_a_cancelled_build_leaves_nothing(tmp_path: Path, model: OnnxModel, raster: Path) -> None:
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        build_index(
            [raster], model, tmp_path / "idx", batch_size=2, run=RunOptions(cancelled=cancelled)
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["band_mean.onnx", "painted.tif"]


def test_a_failed_add_leaves_the_old_index_intact(
    tmp_path: Path, model: OnnxModel, raster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = painted_raster(tmp_path / "second.tif", colour_grid(2, 3, seed=9), TILE)
    build_index([raster], model, tmp_path / "idx")
    before = {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()}

    def fail(*args: object, **kwargs: object) -> None:
        raise Boom("disk full")

    monkeypatch.setattr(store_module, "write_tile_table", fail)
    with pytest.raises(Boom):
        add_to_index(tmp_path / "idx", [second], model)
    assert {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert TileIndex.open(tmp_path / "idx").count == 12


def test_existing_output_needs_force_and_must_be_an_index(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    build_index([raster], model, tmp_path / "idx")
    with pytest.raises(SncaError, match="use --force"):
        build_index([raster], model, tmp_path / "idx")
    second = painted_raster(tmp_path / "second.tif", colour_grid(1, 1, seed=1), TILE)
    build_index([second], model, tmp_path / "idx", force=True)
    assert read_index(tmp_path / "idx").manifest.count == 1
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "thesis.txt").write_text("precious")
    with pytest.raises(SncaError, match="refusing to replace .*documents.*nothing was deleted"):
        build_index([raster], model, tmp_path / "documents", force=True)
    assert (tmp_path / "documents" / "thesis.txt").read_text() == "precious"


def test_a_different_model_is_refused(tmp_path: Path, model: OnnxModel, raster: Path) -> None:
    build_index([raster], model, tmp_path / "idx")
    other = OnnxModel(
        make_band_mean_model(tmp_path / "other.onnx", tile_size=TILE, logit_scale=5.0)
    )
    with pytest.raises(SncaError, match=r"is not the model index .* was built with \(band_mean"):
        add_to_index(tmp_path / "idx", [raster], other)
    wider = OnnxModel(make_band_mean_model(tmp_path / "wide.onnx", tile_size=TILE, embedding_dim=4))
    with pytest.raises(SncaError, match="makes 4-d embeddings but index .* holds 3-d"):
        add_to_index(tmp_path / "idx", [raster], wider)


def test_without_hnswlib_the_index_is_exact_and_searches_the_same(
    tmp_path: Path, model: OnnxModel, raster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_index([raster], model, tmp_path / "graph")
    monkeypatch.setattr(build_module, "hnswlib_available", lambda: False)
    summary = build_index([raster], model, tmp_path / "plain")
    assert summary.ann == "exact" and not (tmp_path / "plain" / GRAPH_NAME).exists()
    plain = TileIndex.open(tmp_path / "plain")
    graph = TileIndex.open(tmp_path / "graph")
    assert (plain.backend, graph.backend) == ("exact", "hnswlib")
    a, b = plain.search_tile_id(4, k=11), graph.search_tile_id(4, k=11)
    assert [h.tile.tile_id for h in a.hits] == [h.tile.tile_id for h in b.hits]
    np.testing.assert_allclose(
        [h.similarity for h in a.hits], [h.similarity for h in b.hits], atol=1e-6
    )
