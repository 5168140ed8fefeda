"""Fixtures shared by the core's tests: a painted raster, the band-mean model, an index of them,
and a folder of coloured scenes. A test module's own fixture of the same name takes precedence.

The rasters are painted in known colours and embedded with the band-mean model, so every tile's
embedding (its normalized colour), class (its brightest band) and score are known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import build_index
from tests.helpers.evaluate_data import CLASSES, COLOURS, write_scene
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted_raster


@pytest.fixture
def model(tmp_path: Path) -> OnnxModel:
    """The band-mean model with the index tests' tile size."""
    return OnnxModel(make_band_mean_model(tmp_path / "band_mean.onnx", tile_size=TILE))


@pytest.fixture
def colours() -> np.ndarray:
    """The colours of a 3 x 4 grid of tiles."""
    return colour_grid(3, 4, seed=7)


@pytest.fixture
def raster(tmp_path: Path, colours: np.ndarray) -> Path:
    """A raster painted tile by tile in ``colours``."""
    return painted_raster(tmp_path / "painted.tif", colours, TILE)


@pytest.fixture
def index_dir(tmp_path: Path, model: OnnxModel, colours: np.ndarray) -> Path:
    """An index of a raster painted in ``colours``, built with ``model``."""
    raster = painted_raster(tmp_path / "painted.tif", colours, TILE)
    build_index([raster], model, tmp_path / "idx")
    return tmp_path / "idx"


@pytest.fixture
def scenes(tmp_path: Path) -> Path:
    """3 classes x 5 scenes; ``green/odd.png`` is painted red (a labelling error)."""
    root = tmp_path / "scenes"
    for c, name in enumerate(CLASSES):
        for i in range(5):
            write_scene(root / name / f"{i}.png", COLOURS[name], seed=10 * c + i)
    write_scene(root / "green" / "odd.png", COLOURS["red"], seed=99)
    return root
