"""The ONNX graph of snca_export.onnx_export for a small ResNet-18 checkpoint (32 px, random
weights): the contract's inputs and outputs and its agreement with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from snca_cli.runtime.onnx_model import OnnxModel  # noqa: E402
from snca_cli.runtime.scene_images import read_image, resize_image  # noqa: E402
from tests.helpers.export_run import (  # noqa: E402
    EMBEDDING_DIM,
    IMAGE_SIZE,
    Exported,
    torch_outputs,
)

pytestmark = pytest.mark.torch


def test_graph_follows_the_contract(exported: Exported) -> None:
    model = onnx.load(str(exported.model))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (image,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert image.name == "image" and dims == ["N", 3, IMAGE_SIZE, IMAGE_SIZE]
    outputs = [
        (o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
        for o in model.graph.output
    ]
    assert outputs == [("embedding", ["N", EMBEDDING_DIM]), ("probabilities", ["N", 3])]


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_matches_torch_on_generated_images(exported: Exported, batch: int) -> None:
    images = np.random.default_rng(batch).random((batch, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    out = OnnxModel(exported.model).run(images)
    embedding, probabilities = torch_outputs(exported.checkpoint, images)
    assert out.embedding.shape == (batch, EMBEDDING_DIM)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-4)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.shared_data
def test_onnx_matches_torch_on_real_aid_images(exported: Exported, aid_dir: Path) -> None:
    paths = [sorted((aid_dir / name).glob("*.jpg"))[0] for name in ("Airport", "Beach", "Forest")]
    images = (
        np.stack(
            [np.moveaxis(resize_image(read_image(p), IMAGE_SIZE), -1, 0) for p in paths]
        ).astype(np.float32)
        / 255
    )
    out = OnnxModel(exported.model).run(images)
    embedding, probabilities = torch_outputs(exported.checkpoint, images)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-4)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-4)
