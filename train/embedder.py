"""A training checkpoint as an evaluation :class:`~snca_cli.tasks.evaluate.Embedder` (torch, CPU).

Registered in the ``snca.embedders`` entry-point group as ``checkpoint``, so ``snca evaluate``
and the benchmarks open checkpoints without the runtime importing the training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snca_cli.contract.metadata import DEFAULT_INPUT_SCALE
from snca_cli.runtime.onnx_model import ModelOutputs
from snca_cli.tasks.evaluate import Embedder
from snca_train.checkpoint import load_model


def open_checkpoint(path: Path) -> Embedder:
    """A training checkpoint run by torch on the CPU."""
    network, checkpoint = load_model(path)

    def run(images: np.ndarray) -> ModelOutputs:
        with torch.inference_mode():
            embedding, logits = network(torch.from_numpy(np.ascontiguousarray(images)))
            probabilities = torch.softmax(logits, dim=1)
        return ModelOutputs(embedding=embedding.numpy(), probabilities=probabilities.numpy())

    seed = checkpoint.get("split_seed")
    return Embedder(
        path=Path(path),
        kind="checkpoint",
        class_names=list(checkpoint["class_names"]),
        image_size=network.config.image_size,
        input_bands=network.config.input_bands,
        input_scale=dict(DEFAULT_INPUT_SCALE),
        backbone=network.config.backbone,
        split_seed=None if seed is None else int(seed),
        run=run,
    )
