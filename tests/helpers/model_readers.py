"""How Deepness and GeoDeep read an ONNX model's ``metadata_props``, rule for rule.

Transcribed from their sources so a contract test fails when snca writes a value either tool
cannot parse: Deepness (PUTvision/qgis-plugin-deepness f450c63,
``src/deepness/processing/models/model_base.py``: ``get_metadata_*``,
``get_outputs_channel_names``) and GeoDeep 0.9.13 (``geodeep/inference.py``:
``create_session``). The tests in ``tests/qgis/test_deepness.py`` and
``tests/snca_cli/tasks/test_convert.py`` also run the real tools.
"""

from __future__ import annotations

import json
from typing import Any


def deepness_reads(props: dict[str, str]) -> dict[str, Any]:
    """The values Deepness takes from ``props`` (a missing key reads as None, as there)."""

    def value(key: str, convert):
        return convert(json.loads(props[key])) if key in props else None

    names = json.loads(props["class_names"])
    outputs = [names] if isinstance(names, dict) else names
    class_names = []
    for output in outputs:
        ordered = sorted(output.items(), key=lambda kv: int(kv[0]))
        if [int(key) for key, _ in ordered] != list(range(len(ordered))):
            raise ValueError("Class names in the model metadata are not consecutive")
        class_names.append([name for _, name in ordered])
    mean = [float(x) for x in json.loads(props["standardization_mean"])]
    std = [float(x) for x in json.loads(props["standardization_std"])]
    return {
        "model_type": value("model_type", lambda v: str(v).capitalize()),
        "class_names": class_names,
        "resolution": value("resolution", float),
        "tile_size": value("tile_size", int),
        "tiles_overlap": value("tiles_overlap", int),
        "seg_thresh": value("seg_thresh", float),
        "seg_small_segment": value("seg_small_segment", int),
        "standardization": (mean, std),
    }


def geodeep_reads(props: dict[str, str]) -> dict[str, Any]:
    """The config GeoDeep builds from ``props`` (its defaults for missing keys)."""
    return {
        "seg_thresh": float(props.get("seg_thresh", 0.5)),
        "seg_small_segment": int(props.get("seg_small_segment", 11)),
        "resolution": float(props.get("resolution", 10)),
        "class_names": json.loads(props.get("class_names", "{}")),
        "model_type": json.loads(props.get("model_type", '"Detector"')),
        "tiles_overlap": float(props.get("tiles_overlap", 5)),
    }
