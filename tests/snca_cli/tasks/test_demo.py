"""The demo (snca_cli.tasks.demo) end to end on the Sentinel-2 scene shipped in the package."""

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio

from snca_cli.contract.scaling import ValueScaling
from snca_cli.errors import SncaError
from snca_cli.tasks.classify import SCALING_METADATA
from snca_cli.tasks.demo import DemoConfig, demo_outputs, demo_scene_path, run_demo
from snca_cli.tasks.output_names import geojson_beside
from tests.helpers.onnx_models import make_band_mean_model


def test_the_shipped_scene_is_real_sentinel2_reflectance() -> None:
    with rasterio.open(demo_scene_path()) as src:
        assert (src.count, src.width, src.height) == (3, 900, 900)
        assert src.dtypes == ("uint16",) * 3
        assert src.crs.to_epsg() == 32618 and src.res == (10.0, 10.0)
        assert tuple(src.bounds) == (440230.0, 4165960.0, 449230.0, 4174960.0)
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        data = src.read()
    # L1C top-of-atmosphere reflectance x 10,000: dark water and forest, bright beach sand
    median = np.median(data, axis=(1, 2))
    assert np.all((median > 400) & (median < 1500)), median
    assert data.max() > 3000 and data.min() > 0
    assert demo_scene_path().stat().st_size <= 3_000_000


def test_demo_writes_every_output_with_exact_band_mean_classes(tmp_path: Path) -> None:
    model = make_band_mean_model(
        tmp_path / "band_mean.onnx", tile_size=150, class_names=["red", "green", "blue"]
    )
    report = run_demo(DemoConfig(output=tmp_path / "demo", model=model, k=5))
    out = tmp_path / "demo"
    outputs = demo_outputs(out)
    for role, path in outputs.items():
        assert (path / "manifest.json" if role == "index" else path).is_file(), role
    assert geojson_beside(outputs["search"]).is_file()
    assert (out / "sentinel2_rgb.tif").read_bytes() == demo_scene_path().read_bytes()
    # 900 x 900 px in 150 px tiles: 6 x 6 tiles, none shifted
    assert report.classify.tiles_total == report.classify.tiles_classified == 36
    assert report.index.count == 36
    # each tile's class is the band of highest mean after the recorded percentile stretch
    tiles = pyogrio.read_dataframe(out / "tiles.gpkg", layer=0)
    record = pyogrio.read_info(out / "tiles.gpkg", layer=0)["layer_metadata"][SCALING_METADATA]
    scaling = ValueScaling.from_record(json.loads(record))
    with rasterio.open(out / "sentinel2_rgb.tif") as src:
        scaled = scaling(src.read())
    means = scaled.reshape(3, 6, 150, 6, 150).mean(axis=(2, 4))
    expected = np.array(["red", "green", "blue"])[means.argmax(axis=0)]
    assert list(tiles["class_name"]) == list(expected[tiles["row"], tiles["col"]])
    assert len(set(tiles["class_name"])) >= 2  # land and water differ
    hits = report.search.hits
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(h.tile.tile_id != report.search.query.tile_id for h in hits)
    assert np.all(np.diff([h.similarity for h in hits]) <= 0)


@pytest.mark.parametrize(
    ("k", "batch", "message"), [(0, 32, "-k must be at least 1"), (5, 0, "batch size must be 1 to")]
)
def test_bad_demo_options_are_refused_before_any_work(
    tmp_path: Path, k: int, batch: int, message: str
) -> None:
    model = make_band_mean_model(tmp_path / "m.onnx")
    with pytest.raises(SncaError, match=message):
        run_demo(DemoConfig(output=tmp_path / "demo", model=model, k=k, batch_size=batch))
    assert not (tmp_path / "demo").exists()  # issue case 7: no half-built folder
