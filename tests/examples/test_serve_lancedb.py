"""examples/serve_lancedb.py: an index's GeoParquet export served from LanceDB, in a local
folder and on a local S3 server, answers "tiles similar to tile X" as ``snca search`` does.

The index holds two rasters painted in known colours and embedded with the band-mean model; an
exact LanceDB search (no vector index) must return the tiles, order and similarities of snca's
exact search, with and without a class filter. The approximate search is measured on clustered
128-d vectors by tests/benchmarks/test_serving.py; here, its filtered search on vectors whose
classes follow their clusters, as real classes do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

import examples.serve_lancedb as serve_lancedb
from examples.serve_lancedb import (
    SearchParams,
    load_export,
    main,
    open_table,
    probes_for,
    similar_tiles,
)
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.index.geoparquet import export_geoparquet
from snca_cli.tasks.index.search import TileIndex
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted_raster
from tests.helpers.s3_cluster import S3_KEYS, s3_server

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # about 20 s: a local S3 server and LanceDB loads
RASTERS = ("scene_1.tif", "scene_2.tif")
#: (tile id, raster) of the query tiles: corners and the middle of both rasters
QUERIES = [(0, "scene_1.tif"), (57, "scene_1.tif"), (119, "scene_2.tif"), (64, "scene_2.tif")]
EXACT = SearchParams(exact=True)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An index of two painted rasters of 10 x 12 tiles, and its GeoParquet export."""
    root = tmp_path_factory.mktemp("serve")
    model = OnnxModel(make_band_mean_model(root / "band_mean.onnx", tile_size=TILE))
    rasters = [
        painted_raster(root / name, colour_grid(10, 12, seed=n), TILE)
        for n, name in enumerate(RASTERS)
    ]
    build_index(rasters, model, root / "idx")
    export_geoparquet(root / "idx", root / "tiles.parquet")
    return root / "idx", root / "tiles.parquet"


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """A local S3 server with the bucket ``tiles``; its environment variables."""
    with s3_server() as env:
        boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket="tiles")
        yield env


def storage_options(env: dict[str, str]) -> dict[str, str]:
    """LanceDB's options reaching the local S3 server."""
    return {
        "aws_endpoint": env["AWS_ENDPOINT_URL"],
        "aws_region": env["AWS_DEFAULT_REGION"],
        "allow_http": "true",
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture(params=["folder", "s3"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, export: tuple[Path, Path]
) -> tuple[str, dict[str, str]]:
    """The export loaded into LanceDB in a local folder or on the S3 server: (URI, options)."""
    if request.param == "folder":
        uri, options = str(tmp_path / "db"), {}
    else:
        uri, options = "s3://tiles/db", storage_options(request.getfixturevalue("s3"))
    loaded = load_export(export[1], uri, options, batch_rows=64)
    assert (loaded.rows, loaded.dim) == (240, 3)
    return uri, options


@pytest.mark.parametrize("class_name", [None, "class_1"])
def test_exact_search_finds_what_snca_search_finds(
    database: tuple[str, dict[str, str]], export: tuple[Path, Path], class_name: str | None
) -> None:
    table = open_table(*database)  # as a search process on another machine opens it
    where = None if class_name is None else f"class_name = '{class_name}'"
    with TileIndex.open(export[0], exact=True) as index:
        for tile_id, raster in QUERIES:
            expected = index.search_tile_id(tile_id, 10, class_name, raster).hits
            hits = similar_tiles(table, tile_id, raster, 10, where, EXACT).to_pylist()
            assert [(h["raster"], h["tile_id"]) for h in hits] == [
                (e.tile.raster.name, e.tile.tile_id) for e in expected
            ]
            np.testing.assert_allclose(
                [h["similarity"] for h in hits], [e.similarity for e in expected], atol=1e-6
            )
            np.testing.assert_allclose(
                [shapely.from_wkb(h["geometry"]).bounds for h in hits],
                [e.tile.bounds for e in expected],
            )
            if class_name is not None:
                assert {h["class_name"] for h in hits} == {class_name}


def test_a_raster_filter_keeps_that_raster_only(export: tuple[Path, Path], tmp_path: Path) -> None:
    load_export(export[1], str(tmp_path / "db"))
    table = open_table(str(tmp_path / "db"))
    everywhere = similar_tiles(table, 5, "scene_1.tif", 240, None, EXACT)
    inside = similar_tiles(table, 5, "scene_1.tif", 10, "raster = 'scene_2.tif'", EXACT)
    in_scene_2 = [h for h in everywhere.to_pylist() if h["raster"] == "scene_2.tif"]
    assert inside["tile_id"].to_pylist() == [h["tile_id"] for h in in_scene_2[:10]]


def test_a_search_process_of_its_own_reads_the_table_from_s3(
    export: tuple[Path, Path], s3: dict[str, str]
) -> None:
    uri = "s3://tiles/shared"
    load_export(export[1], uri, storage_options(s3))
    env = {**os.environ, **s3, "AWS_ALLOW_HTTP": "true", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "examples" / "serve_lancedb.py"), "search", uri]
    done = subprocess.run(
        [*command, "--tile-id", "64", "--raster", "scene_2.tif", "-k", "3", "--exact"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with TileIndex.open(export[0], exact=True) as index:
        expected = index.search_tile_id(64, 3, raster="scene_2.tif").hits
    lines = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [line[:4] for line in lines] == [
        [str(h.rank), str(h.tile.tile_id), f"{h.similarity:.4f}", h.tile.raster.name]
        for h in expected
    ]


def test_bad_input_is_one_line(export: tuple[Path, Path], tmp_path: Path) -> None:
    not_export = tmp_path / "other.parquet"
    pq.write_table(pa.table({"tile_id": [1, 2]}), not_export)
    with pytest.raises(SncaError, match="is not an snca index export: no column"):
        load_export(not_export, str(tmp_path / "db"))
    load_export(export[1], str(tmp_path / "db"))
    table = open_table(str(tmp_path / "db"))
    with pytest.raises(SncaError, match=r"tile 3 is in several rasters \(scene_1.tif, scene_2"):
        similar_tiles(table, 3)
    with pytest.raises(SncaError, match="no tile 999 of scene_1.tif in the table"):
        similar_tiles(table, 999, "scene_1.tif")
    with pytest.raises(SncaError, match="no table 'tiles' in"):
        open_table(str(tmp_path / "empty"))
    with pytest.raises(SystemExit, match="error: --storage-option 'x': expected KEY=VALUE"):
        main(["--storage-option", "x", "search", str(tmp_path / "db"), "--tile-id", "1"])


def clustered_export(path: Path, rows: int, clusters: int, classes: int) -> Path:
    """An export of ``rows`` 128-d unit vectors around ``clusters`` random centres (row i in
    cluster i % clusters), each cluster's tiles of class ``cluster % classes``: a class lies in
    its own clusters."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(clusters, 128))
    cluster = np.arange(rows) % clusters
    vectors = centres[cluster] + 0.3 * rng.normal(size=(rows, 128))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    boxes = shapely.to_wkb(shapely.box(np.arange(rows), 0, np.arange(rows) + 1, 1))
    table = pa.table(
        {
            "tile_id": pa.array(np.arange(rows)),
            "index_row": pa.array(np.arange(rows)),
            "raster": pa.array(["scene.tif"] * rows),
            "class_name": pa.array([f"class_{c % classes}" for c in cluster]),
            "geometry": pa.array(list(boxes), pa.binary()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 128),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def clustered_table(tmp_path_factory: pytest.TempPathFactory):
    """3,600 vectors in 60 clusters of 60, 10 classes of 360, in a LanceDB folder (60 IVF
    partitions asked for; LanceDB trains 14, for 256 vectors each)."""
    root = tmp_path_factory.mktemp("clustered")
    load_export(clustered_export(root / "tiles.parquet", 3600, 60, 10), str(root / "db"))
    return open_table(str(root / "db"))


def test_a_filter_probes_more_partitions_by_the_share_it_keeps(clustered_table) -> None:
    assert probes_for(clustered_table, None, 20) == 20
    assert probes_for(clustered_table, "class_name < 'class_5'", 20) == 40  # keeps 1/2
    assert probes_for(clustered_table, "class_name = 'class_5'", 2) == 20  # keeps 1/10
    assert probes_for(clustered_table, "class_name = 'class_5'", 20) == 60  # every partition
    assert probes_for(clustered_table, "class_name = 'none'", 20) == 20  # keeps nothing


def test_filtered_search_finds_a_class_far_from_the_query(
    clustered_table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries of class 0 filtered to class 5, whose tiles lie in other clusters: probing the
    2 partitions nearest the query, as an unfiltered query does, misses most of them; 2 / 0.1
    probes find them."""
    where, probing = "class_name = 'class_5'", SearchParams(nprobes=2)
    queries = range(0, 600, 10)  # class 0: rows of clusters 0, 10, ..., 50
    truth = [similar_tiles(clustered_table, q, None, 10, where, EXACT) for q in queries]

    def recall() -> float:
        found = [similar_tiles(clustered_table, q, None, 10, where, probing) for q in queries]
        hits = [
            len(set(f["index_row"].to_pylist()) & set(t["index_row"].to_pylist()))
            for f, t in zip(found, truth, strict=True)
        ]
        return sum(hits) / (10 * len(queries))

    assert all(t.num_rows == 10 for t in truth)
    assert recall() >= 0.95
    monkeypatch.setattr(serve_lancedb, "probes_for", lambda table, where, nprobes: nprobes)
    assert recall() < 0.8
