"""TilingOptions of snca_cli.contract.tiling: overlap in pixels, the model's default overlap."""

from __future__ import annotations

import pytest

from snca_cli.contract.metadata import ModelMetadata
from snca_cli.contract.tiling import TilingOptions, model_overlap, tiling_options
from snca_cli.errors import SncaError
from tests.helpers.classify_data import NAMES


@pytest.mark.parametrize(("overlap", "pixels"), [(0, 0), (0.25, 8), (0.1, 3), (16, 16), (24, 24)])
def test_overlap_in_pixels(overlap: float, pixels: int) -> None:
    assert TilingOptions(overlap=overlap).overlap_pixels(32) == pixels


@pytest.mark.parametrize("overlap", [32, 40, -1, float("nan"), float("inf")])
def test_overlap_leaving_no_stride_is_refused(overlap: float) -> None:
    with pytest.raises(SncaError, match="overlap"):
        TilingOptions(overlap=overlap).overlap_pixels(32)


@pytest.mark.parametrize(("overlap", "reads"), [(25, "21"), (31, "1,024"), (0.8, "28")])
def test_an_overlap_beyond_three_quarters_of_the_tile_is_refused_with_its_cost(
    overlap: float, reads: str
) -> None:
    # issue case 7: 149 px on 150 px tiles quietly planned 22,500 reads of every pixel
    with pytest.raises(SncaError, match=f"reads every pixel {reads} times; use at most 24 px"):
        TilingOptions(overlap=overlap).overlap_pixels(32)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf%", "76%", "-1", "x"])
def test_overlap_text_outside_its_range_is_refused(text: str) -> None:
    with pytest.raises(SncaError, match="overlap must"):
        tiling_options(overlap=text)


@pytest.mark.parametrize("text", ["nan", "inf", "0", "-10m"])
def test_resolution_text_outside_its_range_is_refused(text: str) -> None:
    with pytest.raises(SncaError, match="resolution must be auto, native or positive"):
        tiling_options(resolution=text)


@pytest.mark.parametrize("text", ["1e300", "1e-300", "1000001m"])
def test_resolution_beyond_its_range_is_refused(text: str) -> None:
    with pytest.raises(SncaError, match="resolution takes metres per pixel from 0.000001 to 1,0"):
        tiling_options(resolution=text)


def test_model_overlap_is_the_metadata_percentage() -> None:
    meta = ModelMetadata(class_names=NAMES, tile_size=16, embedding_dim=3, tiles_overlap=25.0)
    assert model_overlap(meta) == 0.25
    assert TilingOptions(overlap=model_overlap(meta)).overlap_pixels(16) == 4
    meta.tiles_overlap = 100.0
    with pytest.raises(SncaError, match="tiles_overlap of 100 % is not in 0..100 %"):
        model_overlap(meta)
