"""`snca chips` through the command line on a painted field: two classes, their labels as
points at tile centres in the ``cover`` field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import Result
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.index_data import TILE
from tests.helpers.labels import tile_points_file
from tests.helpers.rasters import painted_raster

RED, GREEN = (200, 30, 30), (30, 200, 40)
#: The field's tile colours, 2 rows of 3 tiles.
PAINT = np.array([[RED, RED, GREEN], [GREEN, RED, GREEN]], dtype=np.uint8)
#: The (row, col) tiles labelled with each class.
LABELS = {"red": [(0, 0), (0, 1), (1, 1)], "green": [(0, 2), (1, 0), (1, 2)]}


def field_and_labels(folder: Path) -> tuple[Path, Path]:
    """The painted field ``folder/field.tif`` and its labels ``folder/labels.geojson``."""
    raster = painted_raster(folder / "field.tif", PAINT, TILE)
    return raster, tile_points_file(folder / "labels.geojson", LABELS)


def run_chips(model: OnnxModel, raster: Path, labels: Path, out: Path, *extra: str) -> Result:
    """Run ``snca chips RASTER --labels LABELS --field cover -m MODEL -o OUT EXTRA...``."""
    return CliRunner().invoke(
        app,
        ["chips", str(raster), "--labels", str(labels), "--field", "cover",
         "-m", str(model.path), "-o", str(out), *extra],
    )  # fmt: skip
