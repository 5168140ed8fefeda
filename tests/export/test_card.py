"""The model card of snca_export.card: the exact split, hashes, input shape and its Markdown."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from snca_cli.runtime.onnx_model import file_sha256  # noqa: E402
from snca_cli.runtime.scene_images import load_split  # noqa: E402
from tests.helpers.export_run import (  # noqa: E402
    IMAGE_SIZE,
    SPLIT_SEED,
    Exported,
)

pytestmark = pytest.mark.torch


def test_model_card_records_the_exact_split(exported: Exported) -> None:
    card = json.loads(exported.model.with_name("model.card.json").read_text())
    split = load_split(exported.run / "split.json")
    assert card["split"]["seed"] == SPLIT_SEED
    assert (card["split"]["train"], card["split"]["test"]) == (split["train"], split["test"])
    assert card["model"]["sha256"] == file_sha256(exported.model)
    assert card["input"]["shape"] == ["N", 3, IMAGE_SIZE, IMAGE_SIZE]
    assert card["int8"]["sha256"] == file_sha256(exported.int8)
    markdown = exported.model.with_name("model.card.md").read_text()
    for heading in ("## Intended use", "## Input contract", "## Test metrics", "## Limitations"):
        assert heading in markdown
    assert f"seed {SPLIT_SEED}" in markdown and "21 train, 3 val, 6 test" in markdown
