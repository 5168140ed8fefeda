"""Drive Deepness (PUTvision/qgis-plugin-deepness f450c63, Apache-2.0) in headless QGIS as its
dock does: its model classes and map processors, on a raster layer, for the whole layer.

Its source comes from the shared third-party tarball, unpacked into a temporary folder at run
time (never copied into snca). Running it needs QGIS's Python with a running ``QgsApplication``
(QGIS is imported only then: the module itself imports anywhere); used by
``tests/qgis/test_deepness.py`` and ``benchmarks/peers.py`` / ``benchmarks/peer_runs.py``.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import MagicMock

import numpy as np

if TYPE_CHECKING:
    from qgis.core import QgsProject, QgsRasterLayer

#: The Deepness source tarball, in the ``third_party`` folder beside the shared data folder.
TARBALL = "qgis-plugin-deepness-f450c63.tar.gz"
#: Deepness's own default batch size (its dock's ``MODEL_BATCH_SIZE`` setting), used unless
#: the model fixes one; snca's models do not.
DEFAULT_BATCH_SIZE = 1


def unpack_deepness(tarball: Path, folder: Path) -> Path:
    """Unpack the Deepness tarball into ``folder``; return the folder to put on ``sys.path``
    (it holds the ``deepness`` package)."""
    with tarfile.open(tarball) as archive:
        archive.extractall(folder)  # a known tarball (the filter argument needs Python 3.11.4+)
    return folder / "src"


def load_model(path: Path) -> tuple[str, Any, Any]:
    """The ``model_type``, Deepness model and model definition (map processor and parameter
    classes) that the file's ``model_type`` selects."""
    from deepness.processing.models.model_base import ModelBase
    from deepness.processing.models.model_types import ModelDefinition

    model_type = ModelBase.get_model_type_from_metadata(str(path))
    (definition,) = [
        d for d in ModelDefinition.get_model_definitions() if d.model_type.value == model_type
    ]
    model = definition.model_class(str(path))
    model.check_loaded_model_outputs()
    return model_type, model, definition


def raster_layer(project: QgsProject, path: Path) -> QgsRasterLayer:
    """``path`` as a raster layer of ``project``."""
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), path.stem)
    assert layer.isValid(), f"QGIS cannot open {path}"
    project.addMapLayer(layer)
    return layer


def processing_parameters(
    deepness_model: Any, parameters_class: type, layer: QgsRasterLayer, batch_size: int, **extra
) -> Any:
    """Deepness's parameters as its dock fills them from the model's metadata ("load default
    parameters"), for the whole layer; the resolution is the model's, else the layer's own (as
    a user sets it: AID's resolution varies, so snca's models record none)."""
    from deepness.common.channels_mapping import ChannelsMapping, ImageChannelStandaloneBand
    from deepness.common.processing_overlap import ProcessingOverlap, ProcessingOverlapOptions
    from deepness.common.processing_parameters.map_processing_parameters import (
        ProcessedAreaType,
    )

    channels = ChannelsMapping()
    channels.set_image_channels(
        [
            ImageChannelStandaloneBand(band_number=b, name=n)
            for b, n in ((1, "r"), (2, "g"), (3, "b"))
        ]
    )
    channels.set_number_of_model_inputs_same_as_image_channels()
    resolution_cm = deepness_model.get_metadata_resolution() or layer.rasterUnitsPerPixelX() * 100
    return parameters_class(
        resolution_cm_per_px=resolution_cm,
        tile_size_px=deepness_model.get_metadata_tile_size(),
        batch_size=batch_size,
        local_cache=False,
        processed_area_type=ProcessedAreaType.ENTIRE_LAYER,
        mask_layer_id=None,
        input_layer_id=layer.id(),
        input_channels_mapping=channels,
        processing_overlap=ProcessingOverlap(
            ProcessingOverlapOptions.OVERLAP_IN_PERCENT,
            percentage=deepness_model.get_metadata_tiles_overlap(),
        ),
        model=deepness_model,
        **extra,
    )


def run_processor(definition: Any, layer: QgsRasterLayer, params: Any) -> tuple[np.ndarray, int]:
    """Run Deepness's map processor (a QgsTask) in this thread; return its result image and
    the number of tiles its grid holds (each one run through the model)."""
    from qgis.PyQt import sip

    processor = definition.map_processor_class(
        rlayer=layer, vlayer_mask=None, map_canvas=MagicMock(), params=params
    )
    try:
        assert processor.run()
        tiles = processor.x_bins_number * processor.y_bins_number
        return np.asarray(processor.get_result_img()), tiles
    finally:
        # a QgsTask left to Python's garbage collector outlives QgsApplication and crashes the
        # interpreter at exit
        sip.delete(processor)
