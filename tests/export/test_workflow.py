"""The export workflow of snca_export.workflow: metadata, the stored split, the training summary."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from snca_cli.runtime.onnx_model import OnnxModel  # noqa: E402
from tests.helpers.export_run import (  # noqa: E402
    EMBEDDING_DIM,
    IMAGE_SIZE,
    SPLIT_SEED,
    Exported,
)

pytestmark = pytest.mark.torch


def test_metadata_round_trips(exported: Exported) -> None:
    meta = OnnxModel(exported.model).metadata
    assert meta.class_names == ["field", "river", "roof"]
    assert (meta.tile_size, meta.embedding_dim, meta.input_bands) == (IMAGE_SIZE, EMBEDDING_DIM, 3)
    assert meta.input_scale["uint8"] == 255.0
    assert (meta.resolution_cm, meta.tiles_overlap, meta.backbone) == (30.0, 25.0, "resnet18")
    assert meta.training["split_seed"] == SPLIT_SEED and meta.training["dataset"] == "scenes"
    assert meta.training["epochs"] == 1
    card = json.loads(exported.model.with_name("model.card.json").read_text())
    assert meta.training["test_metrics"] == card["test_metrics"]
    assert set(card["test_metrics"]) >= {"knn@1", "knn@10", "map@20", "p@1", "nmi", "classifier"}


def test_split_recorded_in_the_checkpoint_is_used_for_the_card() -> None:
    from snca_export.workflow import stored_split

    assert stored_split({"split_seed": 3}) is None
    split = stored_split(
        {"split_seed": 3, "split": {"train": ["a/1.png"], "val": [], "test": ["a/2.png"]}}
    )
    assert split is not None
    assert (split.train, split.test, split.seed) == (["a/1.png"], ["a/2.png"], 3)


def test_the_card_names_the_checkpoint_a_run_started_from() -> None:
    from snca_export.workflow import training_summary

    checkpoint = {
        "train_config": {"init": "/data/runs/aid-table/snca-ce-bank/last.pt", "loss": {}},
        "model_config": {"backbone_size": 224},
        "epoch": 6,
    }
    summary = training_summary(checkpoint, None)
    assert summary["started_from"] == "snca-ce-bank/last.pt"
    assert summary["backbone_size"] == 224 and summary["epochs"] == 6
    assert "started_from" not in training_summary({"train_config": {"loss": {}}}, None)


def test_the_card_names_the_augmentation_recipe() -> None:
    from dataclasses import asdict, replace

    from snca_export.workflow import training_summary
    from snca_train.augment import recipe

    stored = asdict(recipe("transfer"))  # what a checkpoint's train_config holds
    transfer = {"train_config": {"loss": {}, "augment": stored}}
    assert training_summary(transfer, None)["augment"] == "transfer"
    # runs stored before the recipe was recorded trained with the classic one
    assert training_summary({"train_config": {"loss": {}}}, None)["augment"] == "classic"
    changed = {"train_config": {"augment": asdict(replace(recipe("transfer"), crop_scale=0.5))}}
    assert training_summary(changed, None)["augment"] == "transfer (changed: crop_scale 0.5)"
