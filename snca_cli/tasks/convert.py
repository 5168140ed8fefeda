"""Copies of an snca model that Deepness and GeoDeep run (``snca convert``), without torch.

Both tools run a model with a single output and know no per-tile classifier type:

* ``deepness``: the ``embedding`` output only (N x D), ``model_type`` *Recognition*: Deepness's
  similarity search (cosine similarity of every tile to a query image).
* ``segmentor``: the tile classes as a probability map ``class_map`` (N x (1 + C) x H x W, each
  tile's probabilities broadcast over its pixels), ``model_type`` *Segmentor*, which Deepness and
  GeoDeep both run. Channel 0 is ``unclassified`` with probability 0: both tools zero the
  probabilities below their threshold (``seg_thresh``) and take the arg-max, so a tile whose best
  class is below the threshold becomes ``unclassified`` rather than the first class. The written
  ``seg_thresh`` is 0: by default every tile gets its most probable class, as ``snca classify``
  gives it. ``seg_small_segment`` is 0 (a tile is never a small segment to be removed).

Everything else of the metadata is kept (tile size, overlap, standardisation, training record);
``resolution`` can be set for the copy (cm/px). Nodes only the dropped output needed are removed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snca_cli.contract.metadata import EMBEDDING_OUTPUT, INPUT_NAME, PROBABILITIES_OUTPUT
from snca_cli.errors import SncaError, first_line
from snca_cli.runtime.atomic import atomic_output, check_writable
from snca_cli.runtime.onnx_graph import load_snca_onnx, prune_graph

#: What ``snca convert --to`` writes, and the model type each copy carries.
TARGETS = {"deepness": "Recognition", "segmentor": "Segmentor"}

#: The segmentor copy's output and its first channel (probability 0).
CLASS_MAP_OUTPUT = "class_map"
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class ConvertOptions:
    """What to convert to and where."""

    target: str
    output: Path
    resolution_cm: float | None = None
    force: bool = False


@dataclass(frozen=True)
class ConvertResult:
    """The written copy."""

    path: Path
    model_type: str
    output_name: str
    output_shape: list[int | str]
    class_names: list[str]


def _add_class_map(graph: onnx.GraphProto, tile_size: int, classes: int) -> None:
    """Append nodes: ``class_map`` = [0, probabilities] broadcast to N x (1 + C) x T x T."""
    prefix = "snca_segmentor_"
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([0], np.int64), prefix + "zero"),
            numpy_helper.from_array(np.array([1], np.int64), prefix + "one"),
            numpy_helper.from_array(np.array(0.0, np.float32), prefix + "nought"),
            numpy_helper.from_array(np.array([2, 3], np.int64), prefix + "pixel_axes"),
            numpy_helper.from_array(
                np.array([1, 1, tile_size, tile_size], np.int64), prefix + "tile_shape"
            ),
        ]
    )
    p = PROBABILITIES_OUTPUT
    graph.node.extend(
        [
            # a column of zeros, one per tile: the first probability times 0
            helper.make_node(
                "Slice", [p, prefix + "zero", prefix + "one", prefix + "one"], [prefix + "first"]
            ),
            helper.make_node("Mul", [prefix + "first", prefix + "nought"], [prefix + "none"]),
            helper.make_node("Concat", [prefix + "none", p], [prefix + "with_none"], axis=1),
            helper.make_node(
                "Unsqueeze", [prefix + "with_none", prefix + "pixel_axes"], [prefix + "per_tile"]
            ),
            helper.make_node(
                "Expand", [prefix + "per_tile", prefix + "tile_shape"], [CLASS_MAP_OUTPUT]
            ),
        ]
    )
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    batch_dim: int | str = batch.dim_param or batch.dim_value or "N"
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(
            CLASS_MAP_OUTPUT, TensorProto.FLOAT, [batch_dim, classes + 1, tile_size, tile_size]
        )
    )


def convert_model(model_path: Path, options: ConvertOptions) -> ConvertResult:
    """Write the ``options.target`` copy of the snca model at ``model_path``."""
    if options.target not in TARGETS:
        raise SncaError(f"--to must be one of {', '.join(TARGETS)}, not {options.target!r}")
    if options.resolution_cm is not None and not options.resolution_cm > 0:
        raise SncaError(f"--resolution must be positive (cm/px), not {options.resolution_cm}")
    check_writable(options.output, options.force)
    model, metadata = load_snca_onnx(Path(model_path))
    if [i.name for i in model.graph.input] != [INPUT_NAME]:
        raise SncaError(f"model {model_path} must have the one input {INPUT_NAME}")
    if options.resolution_cm is not None:
        metadata.resolution_cm = float(options.resolution_cm)
    metadata.model_type = TARGETS[options.target]
    props = metadata.to_props()
    graph = model.graph
    if options.target == "deepness":
        kept = [o for o in graph.output if o.name == EMBEDDING_OUTPUT]
        del graph.output[:]
        graph.output.extend(kept)
        class_names = metadata.class_names
    else:
        _add_class_map(graph, metadata.tile_size, metadata.num_classes)
        class_names = [UNCLASSIFIED, *metadata.class_names]
        props["class_names"] = json.dumps({str(i): name for i, name in enumerate(class_names)})
        props["seg_thresh"] = json.dumps(0.0)
        props["seg_small_segment"] = json.dumps(0)
    prune_graph(graph)
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise SncaError(f"the converted model is not valid ONNX: {first_line(exc)}") from None
    with atomic_output(options.output, force=options.force) as tmp:
        onnx.save(model, str(tmp))
    output = graph.output[0]
    shape = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
    return ConvertResult(
        path=options.output,
        model_type=metadata.model_type,
        output_name=output.name,
        output_shape=shape,
        class_names=class_names,
    )
