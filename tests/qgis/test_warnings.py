"""One source of warnings: a raster far from the model's training resolutions gets the same
warning line from `snca classify`, the dock's status line and the Processing log, and from
`snca index build` and the Build index algorithm; labels outside the rasters get the same
warning from `snca adapt` and the Adapt model algorithm."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)
from typer.testing import CliRunner  # noqa: E402

from snca_cli.cli import app  # noqa: E402
from tests.helpers.onnx_models import make_band_mean_model  # noqa: E402
from tests.qgis.events import wait_for  # noqa: E402
from tests.qgis.rasters import CLASS_NAMES, TILE_COLOURS, TILE_SIZE, write_tile_colours  # noqa: E402
from tests.qgis.test_adapt import LABELS, point_labels  # noqa: E402

pytestmark = pytest.mark.qgis

#: What the resolution rule says of 40 m pixels for a model trained at 0.5-8 m (the text after
#: ``warning: coarse.tif: ``).
EXPECTED = "warning: coarse.tif: the raster's 40 m/px is far coarser than the 0.5-8 m/px"


class RecordingFeedback(QgsProcessingFeedback):
    """Processing feedback that keeps the warnings pushed to the log."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []

    def pushWarning(self, warning: str) -> None:  # noqa: N802 (QGIS API)
        self.warnings.append(warning)
        super().pushWarning(warning)


@pytest.fixture
def coarse(tmp_path: Path) -> tuple[Path, Path]:
    """A 40 m raster and a model trained at 0.5-8 m per pixel (and resampling off)."""
    raster = write_tile_colours(tmp_path / "coarse.tif", TILE_COLOURS, TILE_SIZE, pixel=40.0)
    model = make_band_mean_model(
        tmp_path / "m.onnx",
        tile_size=TILE_SIZE,
        class_names=CLASS_NAMES,
        training_resolution_m="[0.5, 8]",
    )
    return raster, model


def _warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


def test_the_same_warning_line_from_the_cli_the_dock_and_processing(
    coarse, plugin, tmp_path: Path
) -> None:
    import processing

    raster, model = coarse
    result = CliRunner().invoke(
        app, ["classify", str(raster), "-m", str(model), "-o", str(tmp_path / "cli.gpkg")]
    )
    assert result.exit_code == 0, result.output
    (cli_line,) = _warning_lines(result.stderr)
    assert cli_line.startswith(EXPECTED)

    layer = QgsRasterLayer(str(raster), raster.stem)
    QgsProject.instance().addMapLayer(layer)
    plugin.dock.layer_combo.setLayer(layer)
    plugin.dock.model_file.setFilePath(str(model))
    plugin.dock.output_file.setFilePath(str(tmp_path / "dock.gpkg"))
    task = plugin.controller.classify()
    assert task is not None
    wait_for(lambda: plugin.controller.task is None)
    assert task.error is None and not task.was_cancelled
    assert _warning_lines(plugin.dock.status_text()) == [cli_line]

    feedback = RecordingFeedback()
    processing.run(
        "snca:classifyraster",
        {"INPUT": str(raster), "MODEL": str(model), "OUTPUT": str(tmp_path / "processing.gpkg")},
        feedback=feedback,
    )
    assert feedback.warnings == [cli_line]


def test_the_index_warning_line_from_the_cli_and_processing(
    coarse, provider, tmp_path: Path
) -> None:
    import processing

    raster, model = coarse
    result = CliRunner().invoke(
        app, ["index", "build", str(raster), "-m", str(model), "-o", str(tmp_path / "cli")]
    )
    assert result.exit_code == 0, result.output
    (cli_line,) = _warning_lines(result.stderr)
    assert cli_line.startswith(EXPECTED)

    feedback = RecordingFeedback()
    processing.run(
        "snca:buildindex",
        {"INPUT": [str(raster)], "MODEL": str(model), "INDEX": str(tmp_path / "processing")},
        feedback=feedback,
    )
    assert feedback.warnings == [cli_line]


def test_the_adapt_warning_lines_from_the_cli_and_processing(
    provider, colour_raster: Path, band_mean_model: Path, tmp_path: Path
) -> None:
    import processing

    from snca_qgis.label_layer import write_label_file

    labels = point_labels(LABELS)
    outside = QgsFeature(labels.fields())
    outside.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(0.0, 0.0)))  # far west of the raster
    outside.setAttribute("cover", "warm")
    assert labels.dataProvider().addFeatures([outside])[0]
    labels_file = write_label_file(labels, "cover", tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "adapt", str(colour_raster), "--labels", str(labels_file), "--field", "cover",
            "-m", str(band_mean_model), "-o", str(tmp_path / "cli.onnx"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cli_lines = _warning_lines(result.stderr)
    assert cli_lines == ["warning: 1 label(s) fall outside every raster (ignored)"]

    feedback = RecordingFeedback()
    processing.run(
        "snca:adaptmodel",
        {
            "INPUT": [str(colour_raster)],
            "LABELS": labels,
            "FIELD": "cover",
            "MODEL": str(band_mean_model),
            "OUTPUT": str(tmp_path / "processing.onnx"),
        },
        feedback=feedback,
    )
    assert feedback.warnings == cli_lines
