"""One run of a peer tool on a raster, in a fresh process, for ``benchmarks/peers.py``.

    python peer_runs.py deepness RASTER MODEL RESULT.npy --source DEEPNESS_SRC --batch-size 1 \
        [--query QUERY.png]                                          # QGIS's Python
    python peer_runs.py geodeep RASTER MODEL RESULT.npy

``deepness`` runs Deepness's map processor for the model's ``model_type`` (Segmentor:
``MapProcessorSegmentation``, Recognition: ``MapProcessorRecognition`` with the query image) in
headless QGIS, driven as ``tests/qgis/test_deepness.py`` drives it; ``geodeep`` runs
``geodeep.segment(raster, model, output_type="raw")``. The result image goes to RESULT.npy
(Deepness's recognition: its similarity at the centre of each model tile). The last line printed
is ``RESULT {json}``: tiles run through the model, seconds to load the model, seconds of the
work (the map processor's run; GeoDeep: from its "Model loaded" to the returned mask), the
process's peak RSS once ready to work (started, model loaded) and what ran.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Prefix of the line that carries a run's figures.
RESULT = "RESULT "


def peak_mb() -> float:
    """This process's peak RSS so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_deepness(args: argparse.Namespace) -> dict[str, Any]:
    """Deepness's map processor for the model on the whole raster, in headless QGIS."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication, QgsProject

    app = QgsApplication([], False)
    app.initQgis()
    # onnxruntime (imported by Deepness's models) only once QgsApplication exists: imported
    # before, it can crash QGIS 3.22 at exit
    sys.path[:0] = [str(args.source), str(ROOT)]
    from tests.helpers.deepness import (
        load_model,
        processing_parameters,
        raster_layer,
        run_processor,
    )

    try:
        layer = raster_layer(QgsProject.instance(), args.raster)
        started = time.perf_counter()
        model_type, model, definition = load_model(args.model)
        loaded, ready_mb = time.perf_counter(), peak_mb()
        if model_type == "Segmentor":
            extra: dict[str, Any] = {
                "postprocessing_dilate_erode_size": model.get_metadata_segmentation_small_segment(),
                "pixel_classification__probability_threshold": (
                    model.get_metadata_segmentation_threshold()
                ),
            }
        else:
            extra = {"query_image_path": str(args.query)}
        params = processing_parameters(
            model, definition.parameters_class, layer, args.batch_size, **extra
        )
        result, tiles = run_processor(definition, layer, params)
        done = time.perf_counter()
        tile = params.tile_size_px
        if model_type == "Segmentor":
            np.save(args.result, result[0])
        else:
            np.save(args.result, result[tile // 2 :: tile, tile // 2 :: tile])
        ran = (
            f"MapProcessor{model_type.replace('Segmentor', 'Segmentation')}: {tiles} tiles of "
            f"{tile} px, stride {params.processing_stride_px} px, batch {args.batch_size}, "
            f"{params.resolution_cm_per_px:g} cm/px"
        )
        return {
            "tiles": tiles,
            "load_s": loaded - started,
            "work_s": done - loaded,
            "ready_mb": ready_mb,
            "ran": ran,
        }
    finally:
        QgsProject.instance().removeAllMapLayers()
        gc.collect()
        app.exitQgis()


def run_geodeep(args: argparse.Namespace) -> dict[str, Any]:
    """``geodeep.segment`` of the raster with the model, timed by its progress messages."""
    import geodeep

    loaded: list[float] = []
    ready_mb: list[float] = []
    windows: list[int] = []

    def progress(text: str, _percent: float) -> None:
        if text == "Model loaded":
            loaded.append(time.perf_counter())
            ready_mb.append(peak_mb())
        elif text.startswith("Processing tile 0/"):
            windows.append(int(text.rsplit("/", 1)[1]))

    started = time.perf_counter()
    mask = geodeep.segment(
        str(args.raster), str(args.model), output_type="raw", progress_callback=progress
    )
    done = time.perf_counter()
    np.save(args.result, mask)
    ran = f"segment(): {windows[0]} windows, one tile per session.run, 5 px median filter"
    return {
        "tiles": windows[0],
        "load_s": loaded[0] - started,
        "work_s": done - loaded[0],
        "ready_mb": ready_mb[0],
        "ran": ran,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=("deepness", "geodeep"))
    parser.add_argument("raster", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("result", type=Path, help="Where the result image (.npy) goes.")
    parser.add_argument("--source", type=Path, help="Deepness's unpacked source (its src/).")
    parser.add_argument("--batch-size", type=int, default=1, help="Deepness's batch size.")
    parser.add_argument("--query", type=Path, help="Deepness recognition's query image.")
    args = parser.parse_args()
    figures = run_deepness(args) if args.tool == "deepness" else run_geodeep(args)
    print(RESULT + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
