"""Editing snca ONNX graphs without torch: loading with the contract checked, pruning, and
replacing the classification head (``snca adapt``, ``snca convert``).

:func:`replace_head` keeps every node the ``embedding`` output needs, drops the ones only the
old ``probabilities`` needed, and appends ``probabilities = softmax(embedding @ W.T + b)``: the
embedding (and so every index built with the model) is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snca_cli.contract.metadata import EMBEDDING_OUTPUT, PROBABILITIES_OUTPUT, ModelMetadata
from snca_cli.errors import SncaError, first_line

#: Prefix of the names of the nodes and initializers :func:`replace_head` adds.
HEAD_PREFIX = "snca_adapted_head_"


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


def replace_head(model: onnx.ModelProto, weights: np.ndarray, bias: np.ndarray) -> None:
    """Replace the model's ``probabilities`` output by ``softmax(embedding @ weights.T + bias)``
    (``weights`` C x D, ``bias`` C), in place; the ``embedding`` output is left as it was."""
    graph = model.graph
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
    if weights.ndim != 2 or weights.shape[0] != len(bias):
        raise SncaError(
            f"a head needs C x D weights and C biases, not {weights.shape} and {bias.shape}"
        )
    embedding = next(o for o in graph.output if o.name == EMBEDDING_OUTPUT)
    dims = embedding.type.tensor_type.shape.dim
    if dims[1].dim_value and dims[1].dim_value != weights.shape[1]:
        raise SncaError(
            f"the head takes {weights.shape[1]}-d embeddings; the model makes {dims[1].dim_value}-d"
        )
    batch: int | str = dims[0].dim_param or dims[0].dim_value or "N"
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
            helper.make_node(
                "Gemm",
                [EMBEDDING_OUTPUT, HEAD_PREFIX + "weight", HEAD_PREFIX + "bias"],
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
