"""benchmarks/model_flops.py: MACs of hand-made graphs whose cost is counted by hand, with
shapes from onnx shape inference and, behind a pad computed at run time, from onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from model_flops import conv_kind, gemm_macs, layer_costs, macs_by_kind, operator_times
from onnx import TensorProto, helper, numpy_helper

#: 3 -> 8 channels, 3x3 kernel, stride 2, pads 1 on 16 x 16: an 8 x 8 output.
CONV_MACS = 8 * 3 * 3 * 3 * 8 * 8
#: the flattened 8 x 8 x 8 features (1 x 512) by a 512 x 10 matrix.
GEMM_MACS = 1 * 512 * 10


def save_conv_gemm(path: Path, dynamic_pad: bool = False) -> Path:
    """Conv then Gemm on ``N x 3 x 16 x 16``; with ``dynamic_pad`` the convolution reads the
    input through a ``Pad`` whose pads (all 0) depend on the pixels, which shape inference
    cannot follow."""
    nodes = []
    source = "x"
    if dynamic_pad:
        nodes += [
            helper.make_node("ReduceMin", ["x"], ["low"], keepdims=0),
            helper.make_node("Mul", ["low", "zero"], ["nothing"]),
            helper.make_node("Cast", ["nothing"], ["pad_value"], to=TensorProto.INT64),
            helper.make_node("Expand", ["pad_value", "eight"], ["pads"]),
            helper.make_node("Pad", ["x", "pads"], ["padded"]),
        ]
        source = "padded"
    nodes += [
        helper.make_node("Conv", [source, "w"], ["c"], "conv", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "m"], ["y"], "gemm"),
    ]
    constants = [
        numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w"),
        numpy_helper.from_array(np.ones((512, 10), np.float32), "m"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array([8], np.int64), "eight"),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        constants,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_conv_and_gemm_macs_match_the_hand_count(tmp_path: Path) -> None:
    costs = layer_costs(save_conv_gemm(tmp_path / "m.onnx"))
    assert [(c.name, c.kind, c.macs) for c in costs] == [
        ("conv", "dense 3x3", CONV_MACS),
        ("gemm", "gemm", GEMM_MACS),
    ]
    assert macs_by_kind(costs) == {"dense 3x3": CONV_MACS, "gemm": GEMM_MACS}


def test_shapes_behind_a_pad_computed_at_run_time(tmp_path: Path) -> None:
    costs = layer_costs(save_conv_gemm(tmp_path / "m.onnx", dynamic_pad=True))
    assert [c.macs for c in costs] == [CONV_MACS, GEMM_MACS]


def test_kinds_and_transposed_gemm() -> None:
    assert conv_kind((32, 1, 3, 3)) == "depthwise 3x3"
    assert conv_kind((144, 1, 5, 5)) == "depthwise 5x5"
    assert conv_kind((16, 32, 1, 1)) == "pointwise 1x1"
    assert conv_kind((32, 3, 3, 3)) == "dense 3x3"
    assert gemm_macs((4, 512), (10, 512), trans_b=1) == 4 * 512 * 10
    assert gemm_macs((512, 4), (512, 10), trans_a=1) == 4 * 512 * 10


def test_profiler_groups_the_convolution_by_kind(tmp_path: Path) -> None:
    path = save_conv_gemm(tmp_path / "m.onnx")
    batch = np.ones((2, 3, 16, 16), np.float32)
    times = operator_times({}, path, layer_costs(path), batch, 2, 1, tmp_path)
    assert {"conv dense 3x3", "Gemm"} <= set(times)
    assert all(seconds >= 0 for seconds in times.values())
