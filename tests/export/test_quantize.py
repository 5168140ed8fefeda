"""The int8 variant of snca_export.quantize: it loads, keeps the metadata and stays close."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from snca_cli.runtime.onnx_model import OnnxModel  # noqa: E402
from tests.helpers.export_run import (  # noqa: E402
    IMAGE_SIZE,
    Exported,
)

pytestmark = pytest.mark.torch


def test_int8_model_loads_and_stays_close(exported: Exported) -> None:
    quantized, full = OnnxModel(exported.int8), OnnxModel(exported.model)
    assert quantized.metadata == full.metadata
    ops = {node.op_type for node in onnx.load(str(exported.int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    images = np.random.default_rng(9).random((4, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    a, b = full.run(images).embedding, quantized.run(images).embedding
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    assert (a * b).sum(axis=1).min() > 0.9
    printed = " ".join(exported.output.split())
    assert "images/s int8 vs" in printed and "kNN@10 accuracy:" in printed
    card = json.loads(exported.model.with_name("model.card.json").read_text())
    assert card["int8"]["calibration_images"] == 8
    assert 0.0 <= card["int8"]["knn@10_int8"] <= 1.0
