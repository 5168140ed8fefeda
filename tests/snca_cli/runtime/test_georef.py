"""Ground resolution (snca_cli.runtime.georef): metres per degree, resampling to the model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.georef import metres_per_degree
from snca_cli.runtime.raster_tiles import RasterTiling
from tests.helpers.rasters import (
    BLUE,
    GREEN,
    RED,
    painted,
    utm_transform,
    write_raster,
)
from tests.helpers.tiling import metadata


def test_metres_per_degree_on_wgs84() -> None:
    per_lon, per_lat = metres_per_degree(45.0)
    assert per_lon == pytest.approx(78846.8, abs=0.1)
    assert per_lat == pytest.approx(111131.7, abs=0.1)
    assert metres_per_degree(0.0)[0] == pytest.approx(111319.49, abs=0.01)


def test_geographic_raster_resampled_to_metres_at_its_centre_latitude(tmp_path: Path) -> None:
    # 0.0001 deg pixels centred on latitude 45 N: ~7.9 m east-west, ~11.1 m north-south
    transform = from_origin(10.0, 45.02, 0.0001, 0.0001)
    data = painted([[RED, GREEN], [BLUE, RED]], 200)
    path = write_raster(tmp_path / "geo.tif", data, crs="EPSG:4326", transform=transform)
    options = TilingOptions(resolution=20.0)
    with RasterTiling.open(path, metadata(32), options) as tiling:
        per_lon, per_lat = metres_per_degree(45.0)
        assert tiling.resampled
        assert tiling.transform.a == pytest.approx(20.0 / per_lon, rel=1e-12)
        assert tiling.transform.e == pytest.approx(-20.0 / per_lat, rel=1e-12)
        assert (tiling.transform.c, tiling.transform.f) == (10.0, 45.02)
        assert tiling.width == round(0.04 / (20.0 / per_lon)) == 158
        assert tiling.height == round(0.04 / (20.0 / per_lat)) == 222
        assert tiling.crs.to_epsg() == 4326
        # averaging uniform areas keeps their colour: the top-left tile is red
        batch, fractions = tiling.read([tiling.tile(0, 0)])
    assert fractions[0] == 1.0
    assert np.allclose(batch[0, :, 16, 16], np.array(RED) / 255.0, atol=1 / 255)


def test_model_resolution_resamples_a_projected_raster(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "p.tif", painted([[RED, GREEN], [BLUE, RED]], 64))
    with RasterTiling.open(path, metadata(32, resolution_cm=2000)) as tiling:
        assert tiling.resampled and tiling.transform == utm_transform(20.0)
        assert (tiling.width, tiling.height, tiling.n_rows, tiling.n_cols) == (64, 64, 2, 2)
        batch, _ = tiling.read(list(tiling.tiles()))
    expected = np.array([RED, GREEN, BLUE, RED], np.float32) / 255.0
    assert np.allclose(batch[:, :, 5, 5], expected, atol=1e-6)
    native = TilingOptions(resolution="native")
    with RasterTiling.open(path, metadata(32, resolution_cm=2000), native) as tiling:
        assert not tiling.resampled and tiling.transform == utm_transform(10.0)
    near = TilingOptions(resolution=10.05)  # within 1 %: read as is
    with RasterTiling.open(path, metadata(32), near) as tiling:
        assert not tiling.resampled


def test_refining_a_raster_more_than_16x_per_side_is_refused(tmp_path: Path) -> None:
    """A model exported for 1 m (e.g. --resolution 100 meant as centimetres) on 300 m pixels
    would cut 90,000x the tiles: refused with the way out; 16x is still allowed."""
    path = write_raster(
        tmp_path / "coarse.tif", painted([[RED, GREEN]], 64), transform=utm_transform(300.0)
    )
    with pytest.raises(SncaError) as refused:
        RasterTiling.open(path, metadata(32, resolution_cm=100))
    assert str(refused.value) == (
        "coarse.tif has 300 m pixels: resampling to 1 m/px would enlarge it 300x per side "
        "(38400 x 19200 px); use the raster's own pixels (--resolution native) or a coarser "
        "--resolution"
    )
    with RasterTiling.open(path, metadata(32), TilingOptions(resolution=18.75)) as tiling:
        assert tiling.resampled and (tiling.width, tiling.height) == (2048, 1024)


def test_resampling_keeps_nodata_invalid(tmp_path: Path) -> None:
    data = painted([[GREEN, GREEN]], 64)
    data[:, :, 64:] = 0
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    with RasterTiling.open(path, metadata(32), TilingOptions(resolution=20.0)) as tiling:
        assert tiling.resampled and (tiling.width, tiling.height) == (64, 32)
        _, fractions = tiling.read(list(tiling.tiles()))
    assert fractions.tolist() == [1.0, 0.0]


def test_raster_resolution_warning_uses_the_pixels_the_model_sees(tmp_path: Path) -> None:
    import rasterio

    from snca_cli.contract.metadata import ModelMetadata
    from snca_cli.contract.tiling import TilingOptions
    from snca_cli.runtime.georef import raster_pixel_size_m, raster_resolution_warning
    from tests.helpers.rasters import utm_transform, write_raster

    data = np.zeros((3, 8, 8), np.uint8)
    coarse = write_raster(tmp_path / "c.tif", data, transform=utm_transform(300.0))
    fine = write_raster(tmp_path / "f.tif", data, transform=utm_transform(2.0))
    meta = ModelMetadata(["a"], 8, 2, training_resolution_m=(0.5, 8.0))
    native = TilingOptions()
    assert "300 m/px is far coarser" in raster_resolution_warning(coarse, meta, native)
    assert raster_resolution_warning(fine, meta, native) is None
    # resampled to 2 m the model sees 2 m pixels: no warning
    assert raster_resolution_warning(coarse, meta, TilingOptions(resolution=2.0)) is None
    degrees = write_raster(
        tmp_path / "d.tif", data, crs="EPSG:4326", transform=utm_transform(0.01, (10.0, 0.0))
    )
    with rasterio.open(degrees) as source:  # 0.01 degree at the equator: about 1.1 km
        assert raster_pixel_size_m(source) == pytest.approx(1109.0, rel=0.01)
