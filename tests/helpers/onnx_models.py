"""Tiny ONNX models with exactly known outputs, built with ``onnx.helper`` (no torch).

The *band-mean model* averages each band over the tile: ``m = mean_hw(image)`` (N x bands).
Its embedding is ``normalize(m @ P)`` and its probabilities ``softmax(scale * m @ W)`` with
``W = eye(bands, classes)``: a tile's class is the index of its brightest band. Tests paint
tiles in known colours and assert the exact class, score and similarity of every tile.
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


def band_mean_weights(
    bands: int, classes: int, embedding_dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """The projection P (bands x D) and class weights W (bands x C) of the band-mean model."""
    return np.eye(bands, embedding_dim, dtype=np.float32), np.eye(bands, classes, dtype=np.float32)


def band_mean_reference(
    images: np.ndarray, classes: int, embedding_dim: int, logit_scale: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """What the band-mean model outputs for ``images`` (N x bands x H x W, in [0, 1])."""
    means = images.astype(np.float64).mean(axis=(2, 3))
    projection, weights = band_mean_weights(images.shape[1], classes, embedding_dim)
    embedding = means @ projection
    embedding /= np.sqrt((embedding**2).sum(axis=1, keepdims=True) + 1e-12)
    logits = logit_scale * means @ weights
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return embedding.astype(np.float32), probabilities.astype(np.float32)


def make_band_mean_model(
    path: Path,
    *,
    bands: int = 3,
    tile_size: int = 32,
    class_names: list[str] | None = None,
    embedding_dim: int | None = None,
    logit_scale: float = 10.0,
    resolution_cm: float | None = None,
    with_metadata: bool = True,
    **metadata_overrides,
) -> Path:
    """Write the band-mean model to ``path`` with snca metadata and return the path."""
    class_names = class_names or [f"class_{i}" for i in range(bands)]
    embedding_dim = embedding_dim or bands
    projection, weights = band_mean_weights(bands, len(class_names), embedding_dim)
    nodes = [
        helper.make_node("ReduceMean", [INPUT_NAME], ["means"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["means", "projection"], ["raw_embedding"]),
        helper.make_node("Mul", ["raw_embedding", "raw_embedding"], ["squares"]),
        helper.make_node("ReduceSum", ["squares", "sum_axes"], ["sum_squares"], keepdims=1),
        helper.make_node("Add", ["sum_squares", "eps"], ["sum_squares_eps"]),
        helper.make_node("Sqrt", ["sum_squares_eps"], ["norm"]),
        helper.make_node("Div", ["raw_embedding", "norm"], [EMBEDDING_OUTPUT]),
        helper.make_node("MatMul", ["means", "weights"], ["class_scores"]),
        helper.make_node("Mul", ["class_scores", "logit_scale"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [PROBABILITIES_OUTPUT], axis=1),
    ]
    initializers = [
        numpy_helper.from_array(projection, "projection"),
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "sum_axes"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "eps"),
        numpy_helper.from_array(np.array(logit_scale, dtype=np.float32), "logit_scale"),
    ]
    graph = helper.make_graph(
        nodes,
        "band_mean",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", bands, "H", "W"])],
        [
            helper.make_tensor_value_info(
                EMBEDDING_OUTPUT, TensorProto.FLOAT, ["N", embedding_dim]
            ),
            helper.make_tensor_value_info(
                PROBABILITIES_OUTPUT, TensorProto.FLOAT, ["N", len(class_names)]
            ),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_metadata:
        metadata = ModelMetadata(
            class_names=class_names,
            tile_size=tile_size,
            embedding_dim=embedding_dim,
            input_bands=bands,
            resolution_cm=resolution_cm,
            backbone="band_mean",
            snca_version="test",
        )
        props = metadata.to_props()
        props.update({k: v for k, v in metadata_overrides.items()})
        helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, path)
    return path
