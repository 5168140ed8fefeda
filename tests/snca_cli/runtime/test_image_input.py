"""Image files as model input (snca_cli.runtime.image_input): an image's own scaling choice, with
its GDAL scale/offset, and a query scaled like an index's rasters instead."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import rasterio

from snca_cli.contract.scaling import input_scaling, percentile_scaling
from snca_cli.runtime.image_input import image_as_model_input
from tests.helpers.rasters import write_raster

INPUT_SCALE = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}
SIZE = 16


def reflectance_images(tmp_path: Path) -> tuple[np.ndarray, Path, Path]:
    """uint16 values using 40 % of their range, as a plain GeoTIFF and as one whose bands carry
    a GDAL scale/offset (Landsat C2 style): the raw values, and the two files."""
    data = np.random.default_rng(3).integers(7000, 33000, (3, SIZE, SIZE)).astype(np.uint16)
    plain = write_raster(tmp_path / "dn.tif", data)
    physical = write_raster(tmp_path / "l9.tif", data)
    with rasterio.open(physical, "r+") as dst:
        dst.scales, dst.offsets = (2.75e-5,) * 3, (-0.2,) * 3
    return data, plain, physical


as_input = partial(image_as_model_input, size=SIZE, input_bands=3, input_scale=INPUT_SCALE)


def test_an_images_own_auto_choice_sees_its_gdal_scale_and_offset(tmp_path: Path) -> None:
    data, plain, physical = reflectance_images(tmp_path)
    by_input_scale = input_scaling(data.dtype, INPUT_SCALE, 3)(data)
    stretched = percentile_scaling(data.reshape(3, -1), data.dtype)(data)
    assert np.array_equal(as_input(plain, stretch="auto"), by_input_scale)
    assert np.array_equal(as_input(physical, stretch="auto"), stretched)  # as a raster would be
    assert np.array_equal(as_input(physical), by_input_scale)  # the default: as in training


def test_a_query_is_scaled_like_the_index_rasters_not_by_its_own_choice(tmp_path: Path) -> None:
    data, _, physical = reflectance_images(tmp_path)
    rasters = [input_scaling(np.uint16, INPUT_SCALE, 3, "values use 40%").record()]
    query = as_input(physical, stretch="auto", index_scalings=rasters)
    assert np.array_equal(query, input_scaling(data.dtype, INPUT_SCALE, 3)(data))
    recorded = percentile_scaling(np.array([[8000, 30000]] * 3), data.dtype)
    query = as_input(physical, stretch="auto", index_scalings=[recorded.record()])
    assert np.array_equal(query, recorded(data))
    # an index written before scalings were recorded: the query's own choice, as before
    query = as_input(physical, stretch="auto", index_scalings=[{}])
    assert np.array_equal(query, percentile_scaling(data.reshape(3, -1), data.dtype)(data))
