"""snca_train.embedder: a checkpoint as an evaluation Embedder, reached through the entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.contract.metadata import DEFAULT_INPUT_SCALE  # noqa: E402
from snca_cli.tasks.evaluate import open_embedder  # noqa: E402
from snca_train.embedder import open_checkpoint  # noqa: E402
from tests.helpers.export_run import (  # noqa: E402
    EMBEDDING_DIM,
    IMAGE_SIZE,
    SPLIT_SEED,
    torch_outputs,
    write_checkpoint,
    write_scenes,
)


def test_the_core_opens_a_checkpoint_through_the_registered_opener(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path, write_scenes(tmp_path / "scenes"))
    embedder = open_embedder(checkpoint)  # tasks.evaluate: .pt -> the snca.embedders entry point
    assert embedder.kind == "checkpoint"
    assert (embedder.image_size, embedder.input_bands) == (IMAGE_SIZE, 3)
    assert embedder.split_seed == SPLIT_SEED
    assert embedder.input_scale == DEFAULT_INPUT_SCALE
    assert embedder.class_names == open_checkpoint(checkpoint).class_names

    images = np.random.default_rng(0).random((2, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out = embedder.run(images)
    embedding, probabilities = torch_outputs(checkpoint, images)
    assert out.embedding.shape == (2, EMBEDDING_DIM)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-6)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-6)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, atol=1e-5)
