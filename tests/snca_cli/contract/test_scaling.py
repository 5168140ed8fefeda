"""Value scaling of snca_cli.contract.scaling: input_scale per dtype, the percentile stretch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.raster_tiles import RasterTiling
from tests.helpers.rasters import (
    write_raster,
)
from tests.helpers.tiling import metadata


def test_uint16_is_scaled_by_the_models_input_scale(tmp_path: Path) -> None:
    values = np.array([13107, 32768, 65535], np.uint16)  # 0.2, ~0.5, 1.0 of 65535
    path = write_raster(tmp_path / "u16.tif", np.broadcast_to(values[:, None, None], (3, 32, 32)))
    with RasterTiling.open(path, metadata(32)) as tiling:
        batch, _ = tiling.read([tiling.tile(0, 0)])
    assert np.allclose(batch[0, :, 0, 0], [0.2, 32768 / 65535, 1.0], atol=1e-7)


def test_float_rasters_use_the_float32_scale_and_clip(tmp_path: Path) -> None:
    values = np.array([-0.5, 0.25, 1.5], np.float64)
    path = write_raster(tmp_path / "f.tif", np.broadcast_to(values[:, None, None], (3, 32, 32)))
    with RasterTiling.open(path, metadata(32)) as tiling:
        batch, _ = tiling.read([tiling.tile(0, 0)])
    assert batch[0, :, 0, 0].tolist() == [0.0, 0.25, 1.0]


def test_a_dtype_without_input_scale_asks_for_a_stretch(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "i16.tif", np.ones((3, 32, 32), np.int16))
    with pytest.raises(SncaError, match="no input_scale for int16.*--stretch percentile"):
        RasterTiling.open(path, metadata(32))


def test_percentile_stretch_maps_2_and_98_percent_to_0_and_1(tmp_path: Path) -> None:
    ramp = np.arange(64 * 64, dtype=np.int16).reshape(64, 64)  # values 0..4095, all sampled
    path = write_raster(tmp_path / "ramp.tif", np.stack([ramp, ramp * 2, ramp + 5]))
    options = TilingOptions(stretch="percentile")
    with RasterTiling.open(path, metadata(32), options) as tiling:
        batch, _ = tiling.read(list(tiling.tiles()))
    low, high = np.percentile(np.arange(4096.0), [2, 98])  # 81.9 and 4013.1
    image = np.zeros((64, 64))
    image[:32, :32], image[:32, 32:] = batch[0, 0], batch[1, 0]
    image[32:, :32], image[32:, 32:] = batch[2, 0], batch[3, 0]
    assert np.allclose(image, np.clip((ramp - low) / (high - low), 0, 1), atol=1e-6)
    assert image.min() == 0.0 and image.max() == 1.0
