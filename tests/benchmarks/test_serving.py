"""benchmarks/serving.py: LanceDB's approximate search of a real snca export of clustered 128-d
vectors finds the true neighbours (recall@10 against snca's exact search), with and without a
class filter, and the report compares it with hnswlib measured in the same run; ``--index``
measures an index built from rasters, its query tiles named by raster and tile id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from serving import FILTER_SHARE, report, run

from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import build_index
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted_raster

COUNT = 4000


@pytest.mark.slow
def test_lancedb_recall_and_report(tmp_path: Path) -> None:
    figures = run(COUNT, classes=4, queries=40, work=tmp_path)
    load, lance, hnsw = figures["load"], figures["lancedb"], figures["snca_hnswlib"]
    assert load["rows"] == COUNT and load["table_bytes"] > COUNT * 128 * 4
    for name in ("plain", "filtered"):
        assert lance[name]["recall_at_10"] >= 0.95, name
        assert hnsw[name]["recall_at_10"] >= 0.95, name
        assert 0 < lance[name]["p50_ms"] <= lance[name]["p99_ms"]
    text = report(figures)
    assert f"{COUNT:,} clustered 128-d unit vectors, 4 classes; 40 single queries" in text
    assert "LanceDB / hnswlib, filtered: p50 " in text


@pytest.mark.slow
def test_given_index_of_rasters(tmp_path: Path) -> None:
    """Two rasters of 10 x 12 painted tiles (tile ids repeat across them), the band-mean model:
    every search finds the exact neighbours (under 256 rows LanceDB scans exactly), and the
    filter is the class whose share of the tiles is nearest 10 %."""
    model = OnnxModel(make_band_mean_model(tmp_path / "band_mean.onnx", tile_size=TILE))
    colours = [colour_grid(10, 12, seed=n) for n in range(2)]
    rasters = [
        painted_raster(tmp_path / f"scene_{n}.tif", grid, TILE) for n, grid in enumerate(colours)
    ]
    build_index(rasters, model, tmp_path / "idx")
    figures = run(0, classes=0, queries=40, work=tmp_path / "work", index=tmp_path / "idx")
    assert (figures["count"], figures["dim"]) == (240, 3)
    shares = np.bincount(np.concatenate(colours).reshape(-1, 3).argmax(1), minlength=3) / 240
    nearest = int(np.argmin(np.abs(shares - FILTER_SHARE)))
    assert figures["filter"] == {"class_name": f"class_{nearest}", "share": shares[nearest]}
    for name in ("plain", "filtered"):
        assert figures["lancedb"][name]["recall_at_10"] == 1.0, name
        assert figures["snca_hnswlib"][name]["recall_at_10"] >= 0.95, name
    text = report(figures)
    assert f"240 tiles of the index idx; filter class class_{nearest} (" in text
    assert "40 single queries, top-10" in text
