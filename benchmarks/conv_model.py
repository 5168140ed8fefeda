"""A realistic-cost snca ONNX model for the benchmarks, built with ``onnx.helper`` (no torch).

Five 3x3 convolutions (stride 2 four times) with ReLU, global average pooling, a unit-length
embedding and a softmax head: about 0.3 GMAC per 224 px tile, the cost class of the
EfficientNet-Lite0 backbone snca exports (0.4 GMAC). Its weights are random: the benchmarks
measure speed and memory, not accuracy. It follows the contract of
:mod:`snca_cli.contract.metadata`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snca_cli.contract.metadata import (
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    PROBABILITIES_OUTPUT,
    ModelMetadata,
)

#: (output channels, stride) of each 3x3 convolution.
CONV_LAYERS = ((32, 2), (64, 2), (128, 2), (256, 2), (256, 1))


def make_conv_model(
    path: Path,
    *,
    tile_size: int = 224,
    bands: int = 3,
    embedding_dim: int = 128,
    classes: int = 30,
    width: float = 1.0,
    seed: int = 0,
) -> Path:
    """Write the benchmark model to ``path`` and return the path.

    ``width`` scales every layer's channels (0.125 makes a model about 50 times cheaper, for
    benchmarks that measure memory rather than speed).
    """
    rng = np.random.default_rng(seed)
    nodes = []
    initializers = []
    current, channels = INPUT_NAME, bands
    for i, (full_channels, stride) in enumerate(CONV_LAYERS):
        out_channels = max(4, round(full_channels * width))
        fan_in = channels * 9
        weight = rng.normal(0, np.sqrt(2.0 / fan_in), (out_channels, channels, 3, 3))
        initializers += [
            numpy_helper.from_array(weight.astype(np.float32), f"conv{i}_w"),
            numpy_helper.from_array(np.zeros(out_channels, np.float32), f"conv{i}_b"),
        ]
        nodes += [
            helper.make_node(
                "Conv",
                [current, f"conv{i}_w", f"conv{i}_b"],
                [f"conv{i}"],
                kernel_shape=[3, 3],
                strides=[stride, stride],
                pads=[1, 1, 1, 1],
            ),
            helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]),
        ]
        current, channels = f"relu{i}", out_channels
    projection = rng.normal(0, 1 / np.sqrt(channels), (channels, embedding_dim))
    head = rng.normal(0, 1 / np.sqrt(channels), (channels, classes))
    initializers += [
        numpy_helper.from_array(projection.astype(np.float32), "projection"),
        numpy_helper.from_array(head.astype(np.float32), "head"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "sum_axes"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "eps"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [current], ["pooled4d"]),
        helper.make_node("Flatten", ["pooled4d"], ["pooled"], axis=1),
        helper.make_node("MatMul", ["pooled", "projection"], ["raw_embedding"]),
        helper.make_node("Mul", ["raw_embedding", "raw_embedding"], ["squares"]),
        helper.make_node("ReduceSum", ["squares", "sum_axes"], ["sum_squares"], keepdims=1),
        helper.make_node("Add", ["sum_squares", "eps"], ["sum_squares_eps"]),
        helper.make_node("Sqrt", ["sum_squares_eps"], ["norm"]),
        helper.make_node("Div", ["raw_embedding", "norm"], [EMBEDDING_OUTPUT]),
        helper.make_node("MatMul", ["pooled", "head"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [PROBABILITIES_OUTPUT], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "benchmark_conv",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", bands, "H", "W"])],
        [
            helper.make_tensor_value_info(
                EMBEDDING_OUTPUT, TensorProto.FLOAT, ["N", embedding_dim]
            ),
            helper.make_tensor_value_info(PROBABILITIES_OUTPUT, TensorProto.FLOAT, ["N", classes]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = ModelMetadata(
        class_names=[f"class_{i}" for i in range(classes)],
        tile_size=tile_size,
        embedding_dim=embedding_dim,
        input_bands=bands,
        backbone="benchmark_conv",
        snca_version="benchmark",
    )
    helper.set_model_props(model, metadata.to_props())
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, path)
    return path
