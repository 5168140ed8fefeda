"""Searching an index (snca_cli.tasks.index.search): exact ranks and similarities on painted
rasters, class filter, point queries in any CRS, image queries, and the real Landsat scene.

Each painted tile's embedding is its normalized colour (band-mean model), so the similarity of
two tiles is exactly the cosine of their colours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from PIL import Image
from rasterio.warp import transform as transform_coords

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.ann import normalize
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.tasks.index.build import add_to_index, build_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import read_index
from tests.helpers.index_data import (
    TILE,
    expected_embeddings,
)
from tests.helpers.onnx_models import band_mean_reference, make_band_mean_model
from tests.helpers.rasters import (
    ORIGIN,
    PIXEL,
    painted,
    painted_raster,
    write_raster,
)


def ranked(embeddings: np.ndarray, query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``candidates`` sorted by cosine to ``query`` (descending), ties by smaller id."""
    sims = embeddings[candidates] @ normalize(query)[0]
    return candidates[np.lexsort((candidates, -sims))]


def class_colours(classes: np.ndarray, seed: int) -> np.ndarray:
    """uint8 colours (rows x cols x 3) whose brightest band is ``classes`` (rows x cols)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(20, 120, (*classes.shape, 3))
    bright = np.take_along_axis(colours, classes[..., None], axis=2) + rng.integers(100, 130)
    np.put_along_axis(colours, classes[..., None], bright, axis=2)
    return colours.astype(np.uint8)


@pytest.mark.parametrize("exact", [False, True])
def test_hits_are_ranked_by_exact_cosine_without_the_query(
    index_dir: Path, colours: np.ndarray, exact: bool
) -> None:
    embeddings = expected_embeddings(colours)
    index = TileIndex.open(index_dir, exact=exact)
    assert index.backend == ("exact" if exact else "hnswlib")
    for query in (0, 5, 11):
        result = index.search_tile_id(query, k=5)
        others = np.array([i for i in range(12) if i != query])
        expected = ranked(embeddings, embeddings[query], others)[:5]
        assert [h.tile.tile_id for h in result.hits] == expected.tolist()
        assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]
        np.testing.assert_allclose(
            [h.similarity for h in result.hits], embeddings[expected] @ embeddings[query], atol=1e-6
        )
        assert result.query is not None and result.query.tile_id == query


@pytest.mark.parametrize("exact", [False, True])
def test_several_examples_rank_by_mean_similarity_to_positives_minus_negatives(
    index_dir: Path, colours: np.ndarray, exact: bool
) -> None:
    embeddings = expected_embeddings(colours)
    with TileIndex.open(index_dir, exact=exact) as index:
        positives, negatives = [index.tile(2), index.tile(7)], [index.tile(4)]
        result = index.search_examples(positives, negatives, k=6)
    # the rule by hand: mean cosine to tiles 2 and 7 minus the cosine to tile 4
    scores = (
        embeddings @ embeddings[2] + embeddings @ embeddings[7]
    ) / 2 - embeddings @ embeddings[4]
    others = np.array([i for i in range(12) if i not in (2, 7, 4)])
    expected = others[np.lexsort((others, -scores[others]))][:6]
    assert [h.tile.tile_id for h in result.hits] == expected.tolist()
    np.testing.assert_allclose([h.similarity for h in result.hits], scores[expected], atol=1e-5)
    assert [t.tile_id for t in result.positives] == [2, 7]
    assert [t.tile_id for t in result.negatives] == [4]
    assert result.query_label == "tile 2, tile 7 not tile 4"


def test_one_example_is_the_plain_tile_search(index_dir: Path) -> None:
    with TileIndex.open(index_dir) as index:
        one = index.search_examples([index.tile(5)], k=4)
        plain = index.search_tile_id(5, k=4)
    assert [(h.tile.tile_id, round(h.similarity, 6)) for h in one.hits] == [
        (h.tile.tile_id, round(h.similarity, 6)) for h in plain.hits
    ]


def test_contradictory_or_missing_examples_are_refused(index_dir: Path) -> None:
    with TileIndex.open(index_dir) as index:
        with pytest.raises(SncaError, match="at least one positive"):
            index.search_examples([], [index.tile(1)])
        with pytest.raises(
            SncaError, match="tile 3 of painted.tif is both a positive and a negative"
        ):
            index.search_examples([index.tile(3)], [index.tile(3)])
        with pytest.raises(SncaError, match="raster 'x.tif' is not in the index"):
            index.tile(1, raster="x.tif")
        assert index.tile(1, raster="painted.tif").tile_id == 1


def test_k_beyond_the_index_returns_every_other_tile(index_dir: Path) -> None:
    result = TileIndex.open(index_dir).search_tile_id(3, k=50)
    assert sorted(h.tile.tile_id for h in result.hits) == [i for i in range(12) if i != 3]


def test_a_closed_index_refuses_searches(index_dir: Path) -> None:
    with TileIndex.open(index_dir) as index:
        assert len(index.search_tile_id(0, k=2).hits) == 2
    with pytest.raises(SncaError, match="was closed"):
        index.search_tile_id(0, k=2)


def test_hit_tiles_carry_raster_window_bounds_and_class(index_dir: Path, colours) -> None:
    tile = TileIndex.open(index_dir).tile(6)  # row 1, col 2
    assert tile.raster == (index_dir.parent / "painted.tif").resolve()
    assert tile.window == (2 * TILE, TILE, TILE, TILE)
    minx, maxy = ORIGIN[0] + 2 * TILE * PIXEL, ORIGIN[1] - TILE * PIXEL
    assert tile.bounds == (minx, maxy - TILE * PIXEL, minx + TILE * PIXEL, maxy)
    assert tile.class_name == f"class_{int(np.argmax(colours[1, 2]))}"
    assert tile.crs.to_epsg() == 32633


@pytest.mark.parametrize("exact", [False, True])
def test_class_filter_returns_k_tiles_of_that_class(
    tmp_path: Path, model: OnnxModel, exact: bool
) -> None:
    classes = np.array([0] * 67 + [1] * 30 + [2] * 3)
    classes = np.random.default_rng(3).permutation(classes).reshape(10, 10)
    colours = class_colours(classes, seed=4)
    raster = painted_raster(tmp_path / "classes.tif", colours, TILE)
    build_index([raster], model, tmp_path / "idx")
    index = TileIndex.open(tmp_path / "idx", exact=exact)
    embeddings = expected_embeddings(colours)
    flat = classes.ravel()
    query = int(np.flatnonzero(flat == 0)[0])
    for name, k in (("class_1", 10), ("class_2", 3), ("class_2", 5), ("class_0", 4)):
        members = np.flatnonzero((flat == int(name[-1])) & (np.arange(100) != query))
        expected = ranked(embeddings, embeddings[query], members)[:k]
        result = index.search_tile_id(query, k=k, class_filter=name)
        assert [h.tile.tile_id for h in result.hits] == expected.tolist(), name
        assert {h.tile.class_name for h in result.hits} == {name}
        assert result.class_filter == name
    with pytest.raises(SncaError, match="class 'water' is not one of the model's: class_0, "):
        index.search_tile_id(query, k=3, class_filter="water")


def test_point_queries_in_the_raster_crs_and_in_wgs84(index_dir: Path) -> None:
    index = TileIndex.open(index_dir)
    x = ORIGIN[0] + (2 * TILE + 3) * PIXEL  # column 2 of the grid
    y = ORIGIN[1] - (TILE + 5) * PIXEL  # row 1
    assert index.search_point(x, y, k=3).query.tile_id == 6
    assert index.search_point(x, y, crs="EPSG:32633", k=3).query.tile_id == 6
    (lon,), (lat,) = transform_coords("EPSG:32633", "EPSG:4326", [x], [y])
    assert index.search_lonlat(lon, lat, k=3).query.tile_id == 6
    (x3857,), (y3857,) = transform_coords("EPSG:32633", "EPSG:3857", [x], [y])
    assert index.search_point(x3857, y3857, crs="EPSG:3857", k=3).query.tile_id == 6
    with pytest.raises(SncaError, match=r"point \(10.0, 50.0\) in EPSG:4326 is outside every"):
        index.search_lonlat(10.0, 50.0)
    with pytest.raises(SncaError, match="unknown CRS 'EPSG:999999'"):
        index.search_point(x, y, crs="EPSG:999999")


def test_a_point_over_a_skipped_tile_says_so(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray
) -> None:
    data = painted(colours, TILE)
    data[:, :TILE, :TILE] = 0
    build_index([write_raster(tmp_path / "holes.tif", data, nodata=0)], model, tmp_path / "idx")
    index = TileIndex.open(tmp_path / "idx")
    with pytest.raises(SncaError, match="was not indexed: too few valid pixels"):
        index.search_point(ORIGIN[0] + 5, ORIGIN[1] - 5)
    query = index.search_point(ORIGIN[0] + TILE * PIXEL + 5, ORIGIN[1] - 5).query
    assert query is not None and (query.tile_id, query.row, query.col, query.index_row) == (
        1,
        0,
        1,
        0,
    )
    # the tile is named by its grid id, as snca classify names it, not by its index row
    assert index.tile(1).index_row == 0
    with pytest.raises(SncaError, match="tile 0 of the index was not indexed: too few valid"):
        index.tile(0)
    with pytest.raises(SncaError, match=r"tile id 12 is not in the index \(tile ids 0..11\)"):
        index.tile(12)


def test_point_lookup_agrees_with_the_tiling_under_overlap(
    tmp_path: Path, model: OnnxModel
) -> None:
    raster = write_raster(
        tmp_path / "noise.tif",
        np.random.default_rng(5).integers(1, 255, (3, 37, 45)).astype(np.uint8),
    )
    options = TilingOptions(overlap=3)
    build_index([raster], model, tmp_path / "idx", options=options)
    index = TileIndex.open(tmp_path / "idx")
    rng = np.random.default_rng(6)
    with RasterTiling.open(raster, model.metadata, options) as tiling:
        for col, row in rng.uniform(0, 1, (200, 2)) * (45, 37):
            x, y = tiling.transform @ (col, row)
            assert index.tile_at(x, y).window == tiling.tile_at(x, y).window


def test_image_query_embeds_the_image_like_a_tile(
    tmp_path: Path, index_dir: Path, model: OnnxModel, colours: np.ndarray
) -> None:
    colour = np.array([30, 200, 90], dtype=np.uint8)
    Image.fromarray(np.tile(colour, (20, 20, 1))).save(tmp_path / "query.png")
    result = TileIndex.open(index_dir).search_image(tmp_path / "query.png", model, k=12)
    embeddings = expected_embeddings(colours)
    expected = ranked(embeddings, colour[None].astype(np.float64), np.arange(12))
    assert result.query is None and result.query_label == "image query.png"
    assert [h.tile.tile_id for h in result.hits] == expected.tolist()
    np.testing.assert_allclose(
        [h.similarity for h in result.hits],
        embeddings[expected] @ normalize(colour[None].astype(np.float64))[0],
        atol=1e-6,
    )
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(tmp_path / "grey.png")
    with pytest.raises(SncaError, match="grey.png has 1 band"):
        TileIndex.open(index_dir).search_image(tmp_path / "grey.png", model)
    other = OnnxModel(make_band_mean_model(tmp_path / "o.onnx", tile_size=TILE, logit_scale=2.0))
    with pytest.raises(SncaError, match="is not the model index"):
        TileIndex.open(index_dir).search_image(tmp_path / "query.png", other)


def test_geotiff_image_query_takes_the_index_band_choice(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray
) -> None:
    raster = painted_raster(tmp_path / "bgr.tif", colours, TILE)
    build_index([raster], model, tmp_path / "idx", options=TilingOptions(bands=(3, 2, 1)))
    chip = write_raster(tmp_path / "chip.tif", painted(colours[1:2, 2:3], 16))
    result = TileIndex.open(tmp_path / "idx").search_image(chip, model, k=1)
    assert result.hits[0].tile.tile_id == 6
    assert result.hits[0].similarity == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("stretch", ["auto", "percentile", "model"])
def test_an_image_of_a_low_contrast_tiles_pixels_finds_that_tile(
    tmp_path: Path, model: OnnxModel, stretch: str
) -> None:
    """A query image is scaled like the index's raster (by the scaling it recorded), not by a
    choice of its own: the exact pixels of a low-contrast tile, which on their own would be
    percentile-stretched to a grey mean like the noise tiles', find that tile (similarity 1)
    whether the raster was divided by 255 (auto, model) or stretched by its own percentiles."""
    rng = np.random.default_rng(11)
    data = rng.integers(0, 256, (3, 2 * TILE, 3 * TILE)).astype(np.uint8)  # grey on average
    reddish = np.array([200, 60, 60])[:, None, None] + rng.integers(-8, 9, (3, TILE, TILE))
    data[:, :TILE, :TILE] = reddish  # tile 0 uses 6 % of the uint8 range
    raster = write_raster(tmp_path / "low_contrast.tif", data)
    build_index([raster], model, tmp_path / "idx", options=TilingOptions(stretch=stretch))
    query = tmp_path / "tile_0.png"
    Image.fromarray(np.moveaxis(data[:, :TILE, :TILE], 0, -1)).save(query)
    with TileIndex.open(tmp_path / "idx") as index:
        recorded = index.manifest.rasters[0].scaling["method"]
        hit = index.search_image(query, model, k=1).hits[0]
    assert recorded == ("percentile" if stretch == "percentile" else "input_scale")
    assert hit.tile.tile_id == 0 and hit.similarity >= 0.9999


@pytest.mark.shared_data
def test_landsat_index_round_trip(tmp_path: Path, landsat_rgb: Path) -> None:
    model = OnnxModel(make_band_mean_model(tmp_path / "m.onnx", tile_size=64))
    summary = build_index([landsat_rgb], model, tmp_path / "idx")
    with rasterio.open(landsat_rgb) as src:
        valid = np.all(src.read_masks() > 0, axis=0)  # valid in every band
        pixels = src.read()
    cols = [0, 64, 128, 192, 256, 320, 384, 448, 512, 576, 640, 704, 727]  # last shifted in
    rows = [0, 64, 128, 192, 256, 320, 384, 448, 512, 576, 640, 654]
    fractions = np.array([[valid[r : r + 64, c : c + 64].mean() for c in cols] for r in rows])
    assert summary.count == int((fractions >= 0.5).sum())
    assert summary.skipped == fractions.size - summary.count

    index = TileIndex.open(tmp_path / "idx")
    with rasterio.open(landsat_rgb) as src:
        centre_x, centre_y = src.xy(359, 395)
        (lon,), (lat,) = transform_coords(src.crs, "EPSG:4326", [centre_x], [centre_y])
    result = index.search_lonlat(lon, lat, k=10)
    query = result.query
    assert query is not None and query.window == (384, 320, 64, 64)
    assert result.seconds < 0.5
    col, row, _, _ = query.window
    tile = pixels[:, row : row + 64, col : col + 64].astype(np.float32) / 255.0
    tile_valid = valid[row : row + 64, col : col + 64]
    assert 0.5 <= tile_valid.mean()
    # invalid pixels are filled with the valid mean, so the band means are those of valid pixels
    filled = np.where(tile_valid, tile, tile[:, tile_valid].mean(axis=1)[:, None, None])
    embedding, _ = band_mean_reference(filled[None], classes=3, embedding_dim=3)
    stored = read_index(tmp_path / "idx").embeddings[query.index_row]
    np.testing.assert_allclose(stored, embedding[0], atol=1e-5)
    sims = [h.similarity for h in result.hits]
    assert sims == sorted(sims, reverse=True) and query.tile_id not in [
        h.tile.tile_id for h in result.hits
    ]
    exact = TileIndex.open(tmp_path / "idx", exact=True).search_lonlat(lon, lat, k=10)
    assert [h.tile.tile_id for h in exact.hits] == [h.tile.tile_id for h in result.hits]
    np.testing.assert_allclose(sims, [h.similarity for h in exact.hits], atol=1e-6)

    more = add_to_index(tmp_path / "idx", [_half_copy(landsat_rgb, tmp_path)], model)
    assert more.count == summary.count + more.added and more.added > 0


def _half_copy(path: Path, folder: Path) -> Path:
    """The left half of a raster, as a new GeoTIFF (another raster to add)."""
    with rasterio.open(path) as src:
        profile = src.profile | {"width": src.width // 2}
        data = src.read(window=((0, src.height), (0, src.width // 2)))
    with rasterio.open(folder / "half.tif", "w", **profile) as dst:
        dst.write(data)
    return folder / "half.tif"


def test_nan_pixels_of_a_float_raster_without_nodata_never_reach_the_index(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray
) -> None:
    data = painted(colours, TILE).astype(np.float32)
    data[:, :TILE, :TILE] = np.nan  # tile 0 all NaN: skipped
    data[0, TILE : TILE + 2, :] = np.nan  # two rows of tiles 4..7 NaN in band 1: filled
    raster = write_raster(tmp_path / "f.tif", data)  # no no-data value declared
    build_index([raster], model, tmp_path / "idx", TilingOptions(min_valid=0.5))
    files = read_index(tmp_path / "idx")
    assert files.manifest.count == 11 and files.manifest.rasters[0].skipped == 1
    assert np.isfinite(files.embeddings).all() and np.isfinite(files.tiles["score"]).all()
    with TileIndex.open(tmp_path / "idx") as index, TileIndex.open(tmp_path / "idx", True) as exact:
        for tile_id in range(1, 12):  # tile 0 was skipped
            ann = index.search_tile_id(tile_id, k=10)
            truth = exact.search_tile_id(tile_id, k=10)
            sims = [h.similarity for h in ann.hits]
            assert np.isfinite(sims).all()
            np.testing.assert_allclose(sims, [h.similarity for h in truth.hits], atol=1e-5)


def test_an_all_nan_query_image_is_refused(tmp_path: Path, model: OnnxModel, index_dir: Path):
    image = write_raster(tmp_path / "q.tif", np.full((3, TILE, TILE), np.nan, np.float32))
    with TileIndex.open(index_dir) as index, pytest.raises(SncaError, match="no valid pixels"):
        index.search_image(image, model)


def test_image_query_from_a_gdal_virtual_file(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray, index_dir: Path
) -> None:
    """A /vsi... image reaches GDAL as named (no local existence check), like a local one."""
    local = write_raster(tmp_path / "chip.tif", painted(colours[1:2, 2:3], 16))
    virtual = "/vsimem/snca-test/chip.tif"
    with rasterio.open(local) as src:
        rasterio.shutil.copy(src, virtual, driver="GTiff")
    try:
        index = TileIndex.open(index_dir)
        remote = index.search_image(Path(virtual), model, k=3)
        expected = index.search_image(local, model, k=3)
    finally:
        rasterio.shutil.delete(virtual)
    assert [h.tile.tile_id for h in remote.hits] == [h.tile.tile_id for h in expected.hits]
    assert remote.hits[0].similarity == pytest.approx(expected.hits[0].similarity, abs=1e-7)
    with pytest.raises(SncaError, match="cannot read image"):
        index.search_image(Path("/vsimem/snca-test/missing.tif"), model)
