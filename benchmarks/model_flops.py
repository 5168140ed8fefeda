"""What an ONNX model costs per tile, and where onnxruntime spends its time running it.

* :func:`layer_costs`: multiply-accumulates (MACs) of every Conv, Gemm and MatMul for one input
  (the batch fixed to 1): Conv ``Cout x Cin/groups x kh x kw x Hout x Wout``, Gemm and MatMul
  ``M x N x K``. Shapes come from onnx shape inference; where it cannot follow the graph (a
  ``Pad`` whose pads are computed from ``Shape`` at run time, as in the "same" padding of
  exported EfficientNets), from one onnxruntime run of a batch of 1 with those tensors exposed
  as outputs. One FLOP per multiply and one per add: FLOPs = 2 x MACs.
* :func:`operator_times`: onnxruntime's own profiler (``SessionOptions.enable_profiling``) over
  a few batches, node times summed by group: convolutions by kind (dense, depthwise and
  pointwise, with their kernel size; the same kinds :func:`layer_costs` gives), the layout
  reorders onnxruntime inserts, ``Pad``, quantize / dequantize, and the rest by operator type.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, shape_inference

#: Operators whose MACs are counted.
COUNTED = ("Conv", "Gemm", "MatMul")
#: The input holding the weights of a convolution, per operator type (others: input 1).
WEIGHT_INPUT = {"QLinearConv": 3}
#: Profiler groups of the operators that move data between layouts or precisions.
OPERATOR_GROUPS = {
    "ReorderInput": "layout reorders",
    "ReorderOutput": "layout reorders",
    "Transpose": "layout reorders",
    "QuantizeLinear": "quantize / dequantize",
    "DequantizeLinear": "quantize / dequantize",
    "DynamicQuantizeLinear": "quantize / dequantize",
}


@dataclass(frozen=True)
class LayerCost:
    """The MACs of one node for one input."""

    name: str
    op_type: str
    kind: str  # e.g. "depthwise 3x3", "pointwise 1x1", "dense 3x3", "gemm"
    macs: int


def conv_kind(weight_shape: Iterable[int]) -> str:
    """What a convolution with weights ``Cout x Cin/groups x kh x kw`` is: ``depthwise kxk``
    (one input channel per group), ``pointwise 1x1`` or ``dense kxk``."""
    _, per_group, *kernel = (int(d) for d in weight_shape)
    size = "x".join(map(str, kernel))
    if all(k == 1 for k in kernel):
        return f"pointwise {size}"
    return f"{'depthwise' if per_group == 1 else 'dense'} {size}"


def conv_macs(weight_shape: Iterable[int], output_shape: Iterable[int]) -> int:
    """``Cout x Cin/groups x kh x kw x Hout x Wout`` of one image: the product of the weight
    shape and of the output's spatial size (``output_shape`` is N x Cout x H x W...)."""
    return int(np.prod(list(weight_shape), dtype=np.int64)) * int(
        np.prod(list(output_shape)[2:], dtype=np.int64)
    )


def gemm_macs(
    a_shape: Iterable[int], b_shape: Iterable[int], trans_a: int = 0, trans_b: int = 0
) -> int:
    """``M x N x K`` of ``A (M x K) @ B (K x N)`` (Gemm's ``transA`` / ``transB`` applied;
    MatMul's leading dimensions multiply M)."""
    a, b = list(a_shape), list(b_shape)
    if trans_a:
        a[-2], a[-1] = a[-1], a[-2]
    if trans_b:
        b[-2], b[-1] = b[-1], b[-2]
    rows = int(np.prod(a[:-1], dtype=np.int64))
    return rows * int(a[-1]) * int(b[-1])


def layer_costs(path: Path) -> list[LayerCost]:
    """The MACs of every counted node of the model at ``path`` for one input, in graph order."""
    model = onnx.load(str(path))
    _fix_batch(model)
    shapes = tensor_shapes(model)
    costs = []
    for node in model.graph.node:
        if node.op_type not in COUNTED:
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]
            costs.append(
                LayerCost(
                    node.name,
                    node.op_type,
                    conv_kind(weight),
                    conv_macs(weight, shapes[node.output[0]]),
                )
            )
        else:
            trans_a, trans_b = attributes.get("transA", 0), attributes.get("transB", 0)
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            costs.append(
                LayerCost(node.name, node.op_type, "gemm", gemm_macs(a, b, trans_a, trans_b))
            )
    return costs


def macs_by_kind(costs: Iterable[LayerCost]) -> dict[str, int]:
    """MACs summed per kind, largest first."""
    totals: Counter[str] = Counter()
    for cost in costs:
        totals[cost.kind] += cost.macs
    return dict(totals.most_common())


def tensor_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shapes of the tensors the counted nodes read and write: from onnx shape
    inference, else from one onnxruntime run (the graph's inputs must have fixed shapes)."""
    inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    graph = inferred.graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if info.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = tuple(d.dim_value for d in dims)
    wanted = {
        name
        for node in model.graph.node
        if node.op_type in COUNTED
        for name in (*node.input[:2], node.output[0])
    }
    missing = sorted(wanted - shapes.keys())
    if missing:
        shapes.update(_shapes_from_run(model, missing))
    return shapes


def _fix_batch(model: onnx.ModelProto) -> None:
    """Set every dynamic first dimension of the graph's inputs to 1."""
    for info in model.graph.input:
        dims = info.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1


def _shapes_from_run(model: onnx.ModelProto, names: list[str]) -> dict[str, tuple[int, ...]]:
    """Shapes of ``names`` in one onnxruntime run on zeros (no graph optimisation, so every
    tensor of the graph exists)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feeds = {
        i.name: np.zeros(
            [d.dim_value for d in i.type.tensor_type.shape.dim],
            helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type),
        )
        for i in model.graph.input
        if i.name not in {t.name for t in model.graph.initializer}
    }
    values = session.run(names, feeds)
    return {name: tuple(value.shape) for name, value in zip(names, values, strict=True)}


def operator_times(
    session_options: Mapping[str, str],
    path: Path,
    costs: Iterable[LayerCost],
    batch: np.ndarray,
    runs: int,
    threads: int,
    folder: Path,
) -> dict[str, float]:
    """Seconds per run of ``batch`` spent in each operator group (:func:`operator_group`),
    largest first, from onnxruntime's profiler over ``runs`` runs after one warm-up run; the
    session is made like the runtime's (its config entries ``session_options``, ``threads``
    intra-op threads, 0: onnxruntime's default), its trace written into ``folder``;
    ``costs``: the model's :func:`layer_costs` (the kinds of its convolutions)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    for key, value in session_options.items():
        options.add_session_config_entry(key, value)
    if threads:
        options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / f"{path.stem}-profile")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(runs + 1):
        session.run(None, {name: batch})
    events = json.loads(Path(session.end_profiling()).read_text())
    warm_up = min((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    kinds = {cost.name: cost.kind for cost in costs}
    totals: Counter[str] = Counter()
    for event in events:
        if (
            event.get("cat") == "Node"
            and event["name"].endswith("_kernel_time")
            and event["ts"] >= warm_up["ts"] + warm_up["dur"]
        ):
            node = event["name"].removesuffix("_kernel_time")
            totals[operator_group(node, event["args"], kinds)] += event["dur"] / 1e6 / runs
    return dict(totals.most_common())


def operator_group(node: str, args: Mapping[str, object], kinds: Mapping[str, str]) -> str:
    """The group of the profiled node ``node`` (its trace ``args``): a convolution's kind
    (:func:`conv_kind` of the weights the trace shows, else ``kinds`` of the graph node whose
    name begins the profiled one: onnxruntime shows prepacked weights without their shape),
    a group of :data:`OPERATOR_GROUPS`, else the operator type."""
    op = str(args["op_name"])
    if not op.endswith("Conv"):
        return OPERATOR_GROUPS.get(op, op)
    shapes = args["input_type_shape"]
    assert isinstance(shapes, list)
    weight = next(iter(shapes[WEIGHT_INPUT.get(op, 1)].values()))
    if len(weight) == 4:
        return f"conv {conv_kind(weight)}"
    owner = max((name for name in kinds if node.startswith(name)), key=len, default=None)
    return f"conv {kinds[owner]}" if owner is not None else op
