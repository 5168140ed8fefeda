"""Several-stage features: torch (training, benchmarks) and the ONNX graph (``snca adapt``)
compute the same vector."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.runtime.default_model import default_model_path  # noqa: E402
from snca_cli.runtime.onnx_graph import (  # noqa: E402
    STAGES_OUTPUT,
    load_snca_onnx,
    with_features_output,
)
from snca_cli.runtime.onnx_model import OnnxModel  # noqa: E402
from snca_train.network import ModelConfig  # noqa: E402
from snca_train.onnx_init import network_from_onnx  # noqa: E402
from snca_train.stage_features import STAGE_ENDS, StageFeatures, stage_blocks  # noqa: E402


def test_lite0_stages_end_where_the_channels_change():
    network, _ = network_from_onnx(
        "shipped", ModelConfig("efficientnet_lite0", 2, 128, 3, 150), ["a", "b"]
    )
    stages = stage_blocks(network.backbone.network)
    widths = [stage[0]._project_conv.out_channels for stage in stages]
    assert widths == [16, 24, 40, 80, 112, 192, 320]
    assert [widths[i] for i in STAGE_ENDS] == [80, 112, 192]


def test_the_shipped_graphs_features_are_the_torch_stage_features():
    network, _ = network_from_onnx(
        "shipped", ModelConfig("efficientnet_lite0", 2, 128, 3, 150), ["a", "b"]
    )
    network.eval()
    images = np.random.default_rng(4).random((3, 3, 150, 150), dtype=np.float32)
    with torch.inference_mode():
        standardised = (torch.from_numpy(images) - network.input_mean) / network.input_std
        _, expected = StageFeatures(network.backbone)(standardised)
    graph, _ = load_snca_onnx(default_model_path())
    exposed = OnnxModel(default_model_path(), graph=with_features_output(graph).SerializeToString())
    (features,) = exposed.run_outputs(images, [STAGES_OUTPUT])
    assert features.shape == (3, 80 + 112 + 192 + 1280)
    np.testing.assert_allclose(features, expected.numpy(), atol=2e-3)
