"""`snca search` through the CLI: one-line errors for bad queries and a missing index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import build_index
from tests.helpers.index_data import (
    TILE,
    colour_grid,
)
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import (
    painted_raster,
)


@pytest.fixture
def model(tmp_path: Path) -> OnnxModel:
    return OnnxModel(make_band_mean_model(tmp_path / "band_mean.onnx", tile_size=TILE))


@pytest.fixture
def colours() -> np.ndarray:
    return colour_grid(3, 4, seed=7)


@pytest.fixture
def index_dir(tmp_path: Path, model: OnnxModel, colours: np.ndarray) -> Path:
    raster = painted_raster(tmp_path / "painted.tif", colours, TILE)
    build_index([raster], model, tmp_path / "idx")
    return tmp_path / "idx"


runner = CliRunner()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give exactly one query"),
        (["--tile-id", "1", "--lonlat", "1", "2"], "give exactly one query"),
        (["--tile-id", "1", "--crs", "EPSG:4326"], "--crs goes with --xy"),
        (["--tile-id", "1", "--model", "m.onnx"], "--model goes with --image"),
        (["--tile-id", "99"], "tile id 99 is not in the index"),
        (["--lonlat", "100", "-80"], "is outside every raster of the index"),
        (["--tile-id", "1", "-k", "0"], "-k must be at least 1"),
        (["--tile-id", "1", "--class", "nope"], "class 'nope' is not one of"),
    ],
)
def test_cli_search_errors_are_one_line(
    index_dir: Path, arguments: list[str], message: str
) -> None:
    result = runner.invoke(app, ["search", str(index_dir), *arguments])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_search_of_a_missing_index(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", str(tmp_path / "none"), "--tile-id", "1"])
    assert result.exit_code == 2 and "does not exist" in result.output
