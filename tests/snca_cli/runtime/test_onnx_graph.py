"""Replacing the head of an snca ONNX model (snca_cli.runtime.onnx_graph): the embedding output
is bit-for-bit the base model's, the new probabilities are softmax(x @ W.T + b), x the embedding
or the unit backbone features (the shipped model's: what its embedding layer reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from snca_cli.contract.metadata import PROBABILITIES_OUTPUT
from snca_cli.contract.open_set import OpenSetRule, class_prototypes
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_graph import HEAD_PREFIX, load_snca_onnx, replace_head, set_metadata
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.onnx_models import make_band_mean_model


def test_a_new_head_keeps_the_embedding_and_computes_its_softmax(tmp_path: Path) -> None:
    base_path = make_band_mean_model(tmp_path / "base.onnx", tile_size=8)
    base = OnnxModel(base_path)
    model, metadata = load_snca_onnx(base_path)
    weights = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], np.float32)
    bias = np.array([0.25, -0.5], np.float32)
    replace_head(model, weights, bias)
    metadata.class_names = ["water", "land"]
    metadata.embedding_sha256 = base.embedding_sha256
    set_metadata(model, metadata, {})
    onnx.save(model, str(tmp_path / "adapted.onnx"))
    adapted = OnnxModel(tmp_path / "adapted.onnx")

    images = np.random.default_rng(0).random((5, 3, 8, 8), dtype=np.float32)
    before, after = base.run(images), adapted.run(images)
    np.testing.assert_array_equal(after.embedding, before.embedding)
    logits = before.embedding.astype(np.float64) @ weights.T + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(after.probabilities, expected, atol=1e-6)
    assert adapted.metadata.class_names == ["water", "land"]
    assert adapted.embedding_sha256 == base.sha256 != adapted.sha256
    # the old head is gone: only the new head's weights feed the probabilities
    names = {i.name for i in onnx.load(str(tmp_path / "adapted.onnx")).graph.initializer}
    assert {HEAD_PREFIX + "weight", HEAD_PREFIX + "bias"} <= names
    outputs = [o.name for o in onnx.load(str(tmp_path / "adapted.onnx")).graph.output]
    assert outputs == ["embedding", PROBABILITIES_OUTPUT]


def test_a_head_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    model, _ = load_snca_onnx(make_band_mean_model(tmp_path / "base.onnx", tile_size=8))
    with pytest.raises(SncaError, match="takes 4-d embeddings; the model makes 3-d"):
        replace_head(model, np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(SncaError, match="C x D weights and C biases"):
        replace_head(model, np.zeros((2, 3)), np.zeros(3))


def test_the_open_set_rule_round_trips_through_the_metadata(tmp_path: Path) -> None:
    base_path = make_band_mean_model(tmp_path / "base.onnx", tile_size=8)
    model, metadata = load_snca_onnx(base_path)
    embeddings = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.8, 0.2]], np.float32)
    prototypes = class_prototypes(embeddings, np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(np.linalg.norm(prototypes, axis=1), 1.0, atol=1e-6)
    rule = OpenSetRule(prototypes=prototypes, threshold=0.9)
    replace_head(model, np.eye(2, 3, dtype=np.float32), np.zeros(2, np.float32))
    metadata.class_names, metadata.open_set = ["a", "b"], rule
    set_metadata(model, metadata, {})
    onnx.save(model, str(tmp_path / "m.onnx"))
    loaded = OnnxModel(tmp_path / "m.onnx").metadata.open_set
    assert loaded is not None and loaded.threshold == 0.9
    np.testing.assert_allclose(loaded.prototypes, prototypes, atol=1e-6)
    # (0, 0, 1): cosine 0 to a's prototype; to b's, the mean of (0, 1, 0) and unit (0, .8, .2)
    second = np.array([0.0, 0.8, 0.2]) / np.hypot(0.8, 0.2)
    mean_b = (np.array([0.0, 1.0, 0.0]) + second) / 2
    tiles = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    expected = mean_b[2] / np.linalg.norm(mean_b)  # 0.122
    np.testing.assert_allclose(loaded.best_similarity(tiles)[1], expected, atol=1e-6)
    assert loaded.is_unknown(tiles).tolist() == [False, True]
    assert loaded.is_unknown(tiles, threshold=0.1).tolist() == [False, False]


def test_the_backbone_features_are_what_the_embedding_layer_reads_and_three_stages() -> None:
    from onnx import numpy_helper

    from snca_cli.runtime.default_model import default_model_path
    from snca_cli.runtime.onnx_graph import (
        EMBEDDING_WEIGHT,
        FEATURES_OUTPUT,
        STAGES_OUTPUT,
        with_features_output,
    )

    graph, _ = load_snca_onnx(default_model_path())
    exposed = with_features_output(graph)
    assert exposed is not None
    assert [o.name for o in exposed.graph.output][2:] == [FEATURES_OUTPUT, STAGES_OUTPUT]
    model = OnnxModel(default_model_path(), graph=exposed.SerializeToString())
    images = np.random.default_rng(1).random((3, 3, 150, 150), dtype=np.float32)
    embedding, features, stages = model.run_outputs(
        images, ["embedding", FEATURES_OUTPUT, STAGES_OUTPUT]
    )
    assert features.shape == (3, 1280)  # EfficientNet-Lite0's pooled features
    weights = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    raw = features @ weights[EMBEDDING_WEIGHT].T + weights["network.embedding.bias"]
    np.testing.assert_allclose(
        raw / np.linalg.norm(raw, axis=1, keepdims=True), embedding, atol=1e-5
    )
    # stages of 80, 112 and 192 channels, then the pooled features, each unit length
    assert stages.shape == (3, 80 + 112 + 192 + 1280)
    for start, stop in ((0, 80), (80, 192), (192, 384), (384, 1664)):
        np.testing.assert_allclose(np.linalg.norm(stages[:, start:stop], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        stages[:, 384:], features / np.linalg.norm(features, axis=1, keepdims=True), atol=1e-6
    )


@pytest.mark.parametrize(("kind", "width"), [("features", 1280), ("stages", 1664)])
def test_a_head_on_the_backbone_features_keeps_the_embedding(
    tmp_path: Path, kind: str, width: int
) -> None:
    from snca_cli.runtime.default_model import default_model_path
    from snca_cli.runtime.onnx_graph import with_features_output

    graph, metadata = load_snca_onnx(default_model_path())
    exposed = OnnxModel(default_model_path(), graph=with_features_output(graph).SerializeToString())
    weights = np.random.default_rng(2).normal(0, 1, (2, width)).astype(np.float32)
    bias = np.array([0.5, -0.5], np.float32)
    replace_head(graph, weights, bias, head_input=kind)
    metadata.class_names = ["sea", "land"]
    metadata.class_colours = None  # the new classes take the colours their names give
    set_metadata(graph, metadata, {})
    onnx.save(graph, str(tmp_path / "adapted.onnx"))
    adapted = OnnxModel(tmp_path / "adapted.onnx")
    images = np.random.default_rng(3).random((4, 3, 150, 150), dtype=np.float32)
    embedding, features = exposed.run_outputs(images, ["embedding", kind])
    out = adapted.run(images)
    np.testing.assert_array_equal(out.embedding, embedding)
    logits = (features / np.linalg.norm(features, axis=1, keepdims=True)) @ weights.T + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        out.probabilities, expected / expected.sum(1, keepdims=True), atol=1e-5
    )


def test_graphs_without_backbone_features_say_so(tmp_path: Path) -> None:
    from snca_cli.runtime.onnx_graph import FEATURES_OUTPUT, STAGES_OUTPUT, with_features_output

    model, _ = load_snca_onnx(make_band_mean_model(tmp_path / "base.onnx", tile_size=8))
    assert with_features_output(model) is None
    for kind in (FEATURES_OUTPUT, STAGES_OUTPUT):
        with pytest.raises(SncaError, match="no backbone features"):
            replace_head(model, np.zeros((2, 3)), np.zeros(2), head_input=kind)


def _shape_arithmetic_model() -> onnx.ModelProto:
    """y = x * H + sum(H, W) + x * N for x of shape N x 3 x 8 x 8, H and W read by ``Shape``
    (the batch size N stays symbolic)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "two"], ["h"], axis=0),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Shape", ["x"], ["hw"], start=2),
        helper.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["hw"], ["hwf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["hwf"], ["hw_sum"], keepdims=0),
        helper.make_node("Mul", ["x", "hf"], ["xh"]),
        helper.make_node("Mul", ["x", "nf"], ["xn"]),
        helper.make_node("Add", ["xh", "hw_sum"], ["xh_hw"]),
        helper.make_node("Add", ["xh_hw", "xn"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "shape_arithmetic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [
            numpy_helper.from_array(np.array(2, np.int64), "two"),
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("batch", [1, 5])
def test_folding_known_dimensions_keeps_the_outputs_and_the_dynamic_batch(batch: int) -> None:
    import onnxruntime as ort

    from snca_cli.runtime.onnx_graph import fold_static_dims

    model = _shape_arithmetic_model()
    assert fold_static_dims(model) == 2  # Gather(H) and the Shape slice (H, W); N stays
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Shape") == 1 and ops.count("Constant") == 2
    onnx.checker.check_model(model)
    x = np.random.default_rng(batch).random((batch, 3, 8, 8), dtype=np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x * 8 + 16 + x * batch, rtol=1e-6)


def test_the_shipped_int8_copy_computes_no_padding_at_run_time() -> None:
    from snca_cli.runtime.default_model import default_model_path
    from snca_cli.runtime.precision import int8_copy

    graph = onnx.load(str(int8_copy(default_model_path()))).graph
    # five "same" paddings read the feature maps' height and width; one Shape remains: the
    # batch size of the embedding's L2 normalisation
    (shape,) = [node for node in graph.node if node.op_type == "Shape"]
    assert shape.input[0].startswith("/network/embedding/")
