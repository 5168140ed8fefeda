"""`snca index export` (snca_cli.tasks.index.geoparquet): GeoParquet 1.1 read back with geopandas
and DuckDB; tile count, CRS, windows, classes and embeddings equal the index's."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import geopandas
import numpy as np
import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.vector import DENSIFY_SEGMENTS
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.index.geoparquet import export_geoparquet
from snca_cli.tasks.index.store import read_index
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.rasters import painted_raster, utm_transform

runner = CliRunner()


def duckdb_geo(path: Path) -> dict:
    rows = (
        duckdb.connect()
        .execute(f"SELECT value FROM parquet_kv_metadata('{path}') WHERE key = 'geo'")
        .fetchall()
    )
    return json.loads(rows[0][0])


def test_geopandas_and_duckdb_read_what_the_index_holds(index_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiles.parquet"
    result = runner.invoke(app, ["index", "export", str(index_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 12 tiles (3-d embeddings, EPSG:32633)" in " ".join(result.output.split())
    index = read_index(index_dir)
    tiles = index.tiles

    frame = geopandas.read_parquet(out)
    assert len(frame) == index.manifest.count == 12
    assert frame.crs.to_epsg() == 32633
    assert frame["tile_id"].tolist() == list(range(12))
    np.testing.assert_array_equal(np.stack(frame["embedding"].to_numpy()), index.embeddings)
    assert frame["class_name"].tolist() == [
        index.manifest.class_names[i] for i in tiles["class_index"]
    ]
    np.testing.assert_array_equal(frame["col_off"], tiles["col_off"])
    np.testing.assert_array_equal(frame["score"], tiles["score"])
    np.testing.assert_allclose(
        frame.geometry.bounds.to_numpy(),
        np.stack([tiles["minx"], tiles["miny"], tiles["maxx"], tiles["maxy"]], axis=1),
    )
    assert set(frame["raster"]) == {"painted.tif"}

    con = duckdb.connect()
    count, dim, first = con.execute(
        f"SELECT count(*), max(len(embedding)), first(embedding ORDER BY tile_id) "
        f"FROM read_parquet('{out}')"
    ).fetchone()
    assert (count, dim) == (12, 3)
    np.testing.assert_array_equal(np.float32(first), index.embeddings[0])
    embeddings = np.array(
        con.execute(f"SELECT embedding FROM read_parquet('{out}') ORDER BY tile_id")
        .fetchnumpy()["embedding"]
        .tolist(),
        dtype=np.float32,
    )
    np.testing.assert_array_equal(embeddings, index.embeddings)
    geo = duckdb_geo(out)
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["crs"]["id"] == {"authority": "EPSG", "code": 32633}
    snca = json.loads(
        con.execute(
            f"SELECT value FROM parquet_kv_metadata('{out}') WHERE key = 'snca'"
        ).fetchone()[0]
    )
    assert snca["model_sha256"] == index.manifest.model_sha256
    assert snca["model_name"] == index.manifest.model_name == "band_mean.onnx"


def test_an_index_over_several_crs_is_written_in_wgs84(tmp_path: Path, model: OnnxModel) -> None:
    utm = painted_raster(tmp_path / "utm.tif", colour_grid(1, 2, seed=1), TILE)
    # the same kind of raster in UTM 32N: the index holds two CRSs
    other = painted_raster(
        tmp_path / "utm32.tif", colour_grid(1, 1, seed=2), TILE, crs="EPSG:32632",
        transform=utm_transform(),
    )  # fmt: skip
    build_index([utm, other], model, tmp_path / "idx")
    summary = export_geoparquet(tmp_path / "idx", tmp_path / "mixed.parquet")
    assert (summary.count, summary.crs) == (3, "EPSG:4326")
    frame = geopandas.read_parquet(tmp_path / "mixed.parquet")
    assert frame.crs.to_epsg() == 4326
    assert frame["raster"].tolist() == ["utm.tif", "utm.tif", "utm32.tif"]
    # densified footprints: 4 edges of DENSIFY_SEGMENTS segments, closed
    assert [len(g.exterior.coords) for g in frame.geometry] == [4 * DENSIFY_SEGMENTS + 1] * 3
    bounds = frame.geometry.bounds
    lon = ((bounds["minx"] + bounds["maxx"]) / 2).to_numpy()
    assert 14 < lon[0] < 16 and 8 < lon[2] < 10  # 15 E and 9 E: the zones' central meridians
    assert duckdb_geo(tmp_path / "mixed.parquet")["columns"]["geometry"]["crs"]["id"]["code"] == (
        4326
    )


def test_export_errors_are_one_line(index_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SncaError, match="must end in .parquet"):
        export_geoparquet(index_dir, tmp_path / "tiles.gpkg")
    with pytest.raises(SncaError):
        export_geoparquet(tmp_path / "missing", tmp_path / "a.parquet")
    assert not (tmp_path / "a.parquet").exists()
    out = tmp_path / "b.parquet"
    out.write_bytes(b"old")
    result = runner.invoke(app, ["index", "export", str(index_dir), "-o", str(out)])
    assert result.exit_code != 0 and result.output.startswith("error: ")
    assert "exists; use --force" in result.output and out.read_bytes() == b"old"
