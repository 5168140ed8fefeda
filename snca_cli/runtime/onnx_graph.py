"""Editing snca ONNX graphs without torch: loading with the contract checked, pruning, exposing
the backbone features, and replacing the classification head (``snca adapt``, ``snca convert``).

:func:`replace_head` keeps every node the ``embedding`` output needs, drops the ones only the
old ``probabilities`` needed, and appends ``probabilities = softmax(x @ W.T + b)``, ``x`` the
embedding or the unit-length backbone features: the embedding (and so every index built with
the model) is unchanged. The backbone features of an ``snca export`` graph are the pooled
vector its embedding layer reads (:func:`backbone_features_name`), and for an EfficientNet-Lite
also the pooled outputs of three of its stages (:func:`stage_feature_nodes`; texture and layout
that carry over to classes the model never saw, docs/results.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snca_cli.contract.metadata import EMBEDDING_OUTPUT, PROBABILITIES_OUTPUT, ModelMetadata
from snca_cli.errors import SncaError, first_line

#: Prefix of the names of the nodes and initializers :func:`replace_head` adds.
HEAD_PREFIX = "snca_adapted_head_"
#: The weight of the embedding layer in graphs written by ``snca export``.
EMBEDDING_WEIGHT = "network.embedding.weight"
#: The extra outputs :func:`with_features_output` adds: the pooled backbone features, and for
#: an EfficientNet-Lite the several-stage features.
FEATURES_OUTPUT = "features"
STAGES_OUTPUT = "stages"
#: EfficientNet-Lite stages (0-based, of 7) whose last block's pooled output joins the features:
#: the two stride-16 stages (80 and 112 channels in Lite0) and the first stride-32 one (192);
#: ``snca_train.stage_features`` pools the same ones in torch.
STAGE_ENDS = (3, 4, 5)
#: Prefix of the nodes :func:`stage_feature_nodes` adds; the last one's output is the features.
STAGES_PREFIX = "snca_stage_features_"
STAGE_FEATURES = STAGES_PREFIX + "vector"
#: The scope of an EfficientNet-Lite block in the node names of a torch export.
_BLOCK_SCOPE = re.compile(r"/_blocks\.(\d+)/")


def load_snca_onnx(path: Path) -> tuple[onnx.ModelProto, ModelMetadata]:
    """The ONNX graph and metadata of an snca model file; SncaError for anything else."""
    if not path.is_file():
        raise SncaError(f"model {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a file that is not ONNX
        raise SncaError(f"{path} is not an ONNX model: {first_line(exc)}") from None
    props = {p.key: p.value for p in model.metadata_props}
    metadata = ModelMetadata.from_props(props, source=f"model {path}")
    outputs = [o.name for o in model.graph.output]
    if outputs[:2] != [EMBEDDING_OUTPUT, PROBABILITIES_OUTPUT]:
        raise SncaError(
            f"model {path} has outputs {outputs}; an snca model has "
            f"{EMBEDDING_OUTPUT} and {PROBABILITIES_OUTPUT}"
        )
    return model, metadata


def prune_graph(graph: onnx.GraphProto) -> None:
    """Remove the nodes, initializers and value infos no graph output depends on."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
            for attribute in node.attribute:  # subgraphs (If, Loop) read outer names too
                for sub in [attribute.g, *attribute.graphs]:
                    needed.update(i for n in sub.node for i in n.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    infos = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(infos)


def backbone_features_name(model: onnx.ModelProto) -> str | None:
    """The tensor the embedding layer reads (the backbone's pooled features), in a graph
    written by ``snca export``; None in other graphs."""
    for node in model.graph.node:
        if node.op_type in ("Gemm", "MatMul") and EMBEDDING_WEIGHT in node.input[1:2]:
            return node.input[0]
    return None


def _lite_blocks(graph: onnx.GraphProto) -> list[tuple[str, int]] | None:
    """(output tensor, output channels) of each EfficientNet-Lite block of a torch export, in
    order (fp32 or int8 QDQ); None when the graph has no such blocks."""
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {i.name: i for i in graph.initializer}
    outputs: dict[int, str] = {}
    widths: dict[int, int] = {}
    for node in graph.node:
        match = _BLOCK_SCOPE.search(node.name)
        if match is None or node.op_type == "Constant":
            continue
        block = int(match.group(1))
        outputs[block] = node.output[0]  # nodes come in execution order: the last is the output
        if node.op_type == "Conv" and "/_project_conv/" in node.name:
            weight = node.input[1]
            producer = producers.get(weight)
            if producer is not None and producer.op_type == "DequantizeLinear":
                weight = producer.input[0]
            if weight in initializers:
                widths[block] = int(initializers[weight].dims[0])
    blocks = sorted(outputs)
    if not blocks or blocks != list(range(len(blocks))) or sorted(widths) != blocks:
        return None
    return [(outputs[b], widths[b]) for b in blocks]


def stage_feature_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto] | None:
    """Nodes computing :data:`STAGE_FEATURES` in an ``snca export`` graph of an EfficientNet-Lite:
    the pooled outputs of the last block of each :data:`STAGE_ENDS` stage (a stage ends where
    the blocks' output channels change) and the backbone features, each unit length,
    concatenated; None for other graphs. The nodes are not added to ``model``."""
    pooled = backbone_features_name(model)
    blocks = _lite_blocks(model.graph)
    if pooled is None or blocks is None:
        return None
    ends = [
        i
        for i, (_, width) in enumerate(blocks)
        if i + 1 == len(blocks) or blocks[i + 1][1] != width
    ]
    if len(ends) <= max(STAGE_ENDS):
        return None
    nodes, parts = [], []
    for stage in STAGE_ENDS:
        name = f"{STAGES_PREFIX}{stage}"
        nodes += [
            helper.make_node("GlobalAveragePool", [blocks[ends[stage]][0]], [name + "_pool"]),
            helper.make_node("Flatten", [name + "_pool"], [name + "_flat"], axis=1),
            helper.make_node("LpNormalization", [name + "_flat"], [name], axis=1, p=2),
        ]
        parts.append(name)
    nodes.append(
        helper.make_node("LpNormalization", [pooled], [STAGES_PREFIX + "pooled"], axis=1, p=2)
    )
    nodes.append(
        helper.make_node("Concat", [*parts, STAGES_PREFIX + "pooled"], [STAGE_FEATURES], axis=1)
    )
    return nodes


def feature_tensors(model: onnx.ModelProto) -> dict[str, tuple[str, list[onnx.NodeProto]]]:
    """The backbone features a head can read in ``model``, by kind: :data:`FEATURES_OUTPUT`
    (the pooled features) and, for an EfficientNet-Lite, :data:`STAGES_OUTPUT`; each as (the
    tensor, the nodes to add for it). Empty for a graph without backbone features."""
    pooled = backbone_features_name(model)
    if pooled is None:
        return {}
    kinds = {FEATURES_OUTPUT: (pooled, [])}
    stages = stage_feature_nodes(model)
    if stages is not None:
        kinds[STAGES_OUTPUT] = (STAGE_FEATURES, stages)
    return kinds


def with_features_output(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """A copy of ``model`` with each kind of its backbone features (:func:`feature_tensors`)
    as an extra output named by the kind; None when the graph has none."""
    kinds = feature_tensors(model)
    if not kinds:
        return None
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for kind, (name, nodes) in kinds.items():
        copy.graph.node.extend(nodes)
        copy.graph.node.append(helper.make_node("Identity", [name], [kind]))
        copy.graph.output.append(helper.make_tensor_value_info(kind, TensorProto.FLOAT, None))
    return copy


def replace_head(
    model: onnx.ModelProto,
    weights: np.ndarray,
    bias: np.ndarray,
    head_input: str = EMBEDDING_OUTPUT,
) -> None:
    """Replace the model's ``probabilities`` output by ``softmax(x @ weights.T + bias)``
    (``weights`` C x D, ``bias`` C), in place, ``x`` the ``embedding`` output or, for
    ``head_input`` :data:`FEATURES_OUTPUT` or :data:`STAGES_OUTPUT`, those backbone features
    scaled to unit length; the ``embedding`` output is left as it was."""
    graph = model.graph
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
    if weights.ndim != 2 or weights.shape[0] != len(bias):
        raise SncaError(
            f"a head needs C x D weights and C biases, not {weights.shape} and {bias.shape}"
        )
    embedding = next(o for o in graph.output if o.name == EMBEDDING_OUTPUT)
    dims = embedding.type.tensor_type.shape.dim
    batch: int | str = dims[0].dim_param or dims[0].dim_value or "N"
    head_nodes = []
    if head_input in (FEATURES_OUTPUT, STAGES_OUTPUT):
        kinds = feature_tensors(model)
        if not kinds:
            raise SncaError("the model has no backbone features (not written by snca export)")
        if head_input not in kinds:
            raise SncaError("the model's backbone has no EfficientNet-Lite stages")
        name, head_nodes = kinds[head_input]
        source = HEAD_PREFIX + "input"
        head_nodes = [
            *head_nodes,
            helper.make_node("LpNormalization", [name], [source], axis=1, p=2),
        ]
    elif head_input == EMBEDDING_OUTPUT:
        source = EMBEDDING_OUTPUT
        if dims[1].dim_value and dims[1].dim_value != weights.shape[1]:
            raise SncaError(
                f"the head takes {weights.shape[1]}-d embeddings; the model makes "
                f"{dims[1].dim_value}-d"
            )
    else:
        raise SncaError(
            f"a head reads {EMBEDDING_OUTPUT}, {FEATURES_OUTPUT} or {STAGES_OUTPUT}, "
            f"not {head_input}"
        )
    kept = [o for o in graph.output if o.name == EMBEDDING_OUTPUT]
    del graph.output[:]
    graph.output.extend(kept)
    prune_graph(graph)  # the old head's nodes and weights go
    graph.initializer.extend(
        [
            numpy_helper.from_array(weights, HEAD_PREFIX + "weight"),
            numpy_helper.from_array(bias, HEAD_PREFIX + "bias"),
        ]
    )
    graph.node.extend(
        [
            *head_nodes,
            helper.make_node(
                "Gemm",
                [source, HEAD_PREFIX + "weight", HEAD_PREFIX + "bias"],
                [HEAD_PREFIX + "logits"],
                transB=1,
            ),
            helper.make_node("Softmax", [HEAD_PREFIX + "logits"], [PROBABILITIES_OUTPUT], axis=1),
        ]
    )
    graph.output.append(
        helper.make_tensor_value_info(
            PROBABILITIES_OUTPUT, TensorProto.FLOAT, [batch, int(weights.shape[0])]
        )
    )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise SncaError(f"the adapted model is not valid ONNX: {first_line(exc)}") from None


def set_metadata(model: onnx.ModelProto, metadata: ModelMetadata, extra: dict[str, str]) -> None:
    """Replace the model's ``metadata_props`` by ``metadata``'s plus ``extra`` (JSON values)."""
    props = {**metadata.to_props(), **extra}
    del model.metadata_props[:]
    helper.set_model_props(model, props)


def fold_static_dims(model: onnx.ModelProto) -> int:
    """Replace, in place, every ``Shape`` (or ``Shape`` slice) of known dimensions, and every
    ``Gather`` of known dimensions of a ``Shape``, by a constant; return how many.

    Graphs exported from PyTorch compute "same" padding from the input's height and width at
    run time (``Shape`` -> ``Gather`` -> arithmetic -> ``Pad``): with a symbolic batch size
    onnxruntime cannot fold them, and the paddings stay unfused, dynamic operators between the
    convolutions. The tile size is fixed, so these values are constants: folded, onnxruntime
    computes the paddings once at load time (the outputs are exactly the same).
    """
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model).graph
    dims = {
        info.name: [d.dim_value if d.HasField("dim_value") else None for d in _dims(info)]
        for info in [*inferred.input, *inferred.value_info, *inferred.output]
        if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape")
    }
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    shapes: dict[str, list[int | None]] = {}  # a Shape node's output -> the dims it holds
    folded, nodes = 0, []
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        if node.op_type == "Shape" and node.input[0] in dims:
            bounds = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            whole = dims[node.input[0]]
            shapes[node.output[0]] = whole[bounds.get("start", 0) : bounds.get("end", len(whole))]
        value = _static_value(node, constants, shapes)
        if value is None:
            nodes.append(node)
            continue
        constants[node.output[0]] = value
        tensor = numpy_helper.from_array(value, node.output[0] + "_folded")
        nodes.append(helper.make_node("Constant", [], [node.output[0]], value=tensor))
        folded += 1
    del graph.node[:]
    graph.node.extend(nodes)
    prune_graph(graph)
    return folded


def _dims(info: onnx.ValueInfoProto) -> list:
    return list(info.type.tensor_type.shape.dim)


def _static_value(
    node: onnx.NodeProto, constants: dict[str, np.ndarray], shapes: dict[str, list[int | None]]
) -> np.ndarray | None:
    """The constant value of a ``Shape`` or ``Gather``-of-``Shape`` node, None if not known."""
    if node.op_type == "Shape" and node.output[0] in shapes:
        part = shapes[node.output[0]]
        return np.array(part, dtype=np.int64) if part and all(part) else None
    if node.op_type == "Gather" and node.input[0] in shapes and node.input[1] in constants:
        axis = next((helper.get_attribute_value(a) for a in node.attribute), 0)
        known = np.array([d or 0 for d in shapes[node.input[0]]], dtype=np.int64)
        picked = np.take(known, constants[node.input[1]]) if axis == 0 else None
        if picked is not None and np.all(picked > 0):
            return picked
    return None
