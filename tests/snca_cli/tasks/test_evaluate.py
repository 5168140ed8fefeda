"""Evaluation (snca_cli.tasks.evaluate) of the exactly-known band-mean ONNX model over generated
scene folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snca_cli.errors import SncaError
from snca_cli.runtime.scene_images import make_split, save_split, scan_scene_folder
from snca_cli.tasks.evaluate import (
    EvaluationSplit,
    embed_items,
    evaluate_model,
    open_embedder,
    resolve_split,
)
from tests.helpers.evaluate_data import (
    CLASSES,
    TEST,
    TRAIN,
    colour_model,
    write_scene,
    write_split_file,
)
from tests.helpers.onnx_models import band_mean_reference, make_band_mean_model


def folder_model(path: Path, **overrides: str) -> Path:
    """The band-mean model named with the folder's classes (its predictions are not used)."""
    return make_band_mean_model(path, bands=3, tile_size=8, class_names=CLASSES, **overrides)


def test_band_mean_embeddings_match_the_reference(tmp_path: Path, scenes: Path) -> None:
    # images are read, resized (12 -> 8 px, bilinear) and scaled by 1/255 before the model
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=8, class_names=["r", "g", "b"])
    embedder = open_embedder(model)
    out = embed_items(embedder, scenes, ["red/0.png", "blue/1.png"])
    pixels = [
        np.asarray(Image.open(scenes / item).resize((8, 8), Image.Resampling.BILINEAR))
        for item in ["red/0.png", "blue/1.png"]
    ]
    images = np.moveaxis(np.stack(pixels).astype(np.float32) / 255, -1, 1)
    embedding, probabilities = band_mean_reference(images, classes=3, embedding_dim=3)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-6)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-6)
    tta = embed_items(embedder, scenes, ["red/0.png", "blue/1.png"], tta=True)
    # flips and quarter turns leave band means unchanged
    np.testing.assert_allclose(tta.embedding, embedding, atol=1e-6)


def test_metrics_of_a_split_with_one_mislabelled_scene(tmp_path: Path, scenes: Path) -> None:
    embedder = open_embedder(colour_model(tmp_path / "m.onnx"))
    split = EvaluationSplit(train=TRAIN, test=TEST, seed=7, source="test")
    report = evaluate_model(embedder, scenes, split)
    # 5 of 6 queries have 3 same-coloured training scenes nearest; green/odd is red
    assert report["metrics"]["knn@1"] == pytest.approx(5 / 6)
    assert report["metrics"]["knn@5"] == pytest.approx(5 / 6)
    assert report["metrics"]["classifier"] == pytest.approx(5 / 6)
    assert report["metrics"]["p@1"] == pytest.approx(5 / 6)
    # rows/columns in model order red, green, blue
    assert report["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 0, 2]]
    assert report["per_class_accuracy"] == {"red": 1.0, "green": 0.5, "blue": 1.0}
    assert report["data"]["num_train"] == 9 and report["data"]["num_test"] == 6


def test_split_file_beside_the_model_wins_over_the_seed(tmp_path: Path, scenes: Path) -> None:
    model = folder_model(tmp_path / "m.onnx", training=json.dumps({"split_seed": 3}))
    embedder = open_embedder(model)
    from_seed = resolve_split(embedder, scenes, None)
    expected = make_split(scan_scene_folder(scenes), 3)
    assert (from_seed.train, from_seed.test, from_seed.seed) == (
        expected["train"],
        expected["test"],
        3,
    )
    folder = scan_scene_folder(scenes)
    save_split(tmp_path / "split.json", folder, make_split(folder, 11), 11)
    beside = resolve_split(embedder, scenes, None)
    assert beside.seed == 11 and beside.source.endswith("split.json")
    explicit = tmp_path / "mine.json"
    save_split(explicit, folder, {"train": TRAIN, "val": [], "test": TEST}, 7)
    assert resolve_split(embedder, scenes, explicit).test == TEST


def test_split_problems_are_one_line_errors(tmp_path: Path, scenes: Path) -> None:
    embedder = open_embedder(folder_model(tmp_path / "m.onnx"))
    with pytest.raises(SncaError, match="records no split seed .* pass --split FILE"):
        resolve_split(embedder, scenes, None)
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps({"seed": 1, "classes": ["a", "b"], "train": [], "val": [], "test": []})
    )
    with pytest.raises(SncaError, match="the split \\(file other.json\\) has an empty train"):
        resolve_split(embedder, scenes, other)
    four_band = open_embedder(
        make_band_mean_model(
            tmp_path / "m4.onnx", bands=4, tile_size=8, class_names=CLASSES + ["x"]
        )
    )
    with pytest.raises(SncaError, match="has 3 band.*the model takes 4"):
        embed_items(four_band, scenes, ["red/0.png"])


def test_a_folder_of_other_classes_gets_embedding_metrics_only(tmp_path: Path) -> None:
    """The colour model (classes red, green, blue) on a folder of two other classes, "warm"
    (red and orange scenes) and "cool" (blue scenes): the folder's seed-0 split is the
    database, kNN over the band-mean embeddings separates them, no classifier accuracy."""
    root = tmp_path / "mine"
    colours = {"warm": [(200, 30, 20), (210, 120, 20)], "cool": [(20, 35, 210)]}
    for name, shades in colours.items():
        for i in range(10):
            write_scene(root / name / f"{i}.png", shades[i % len(shades)], seed=i)
    embedder = open_embedder(colour_model(tmp_path / "m.onnx"))
    split = resolve_split(embedder, root, None)
    assert split.class_names == ["cool", "warm"] and not split.same_classes(embedder)
    expected = make_split(scan_scene_folder(root), 0)  # the model records no split seed
    assert (split.train, split.test, split.seed) == (expected["train"], expected["test"], 0)
    report = evaluate_model(embedder, root, split)
    assert "classifier" not in report["metrics"]
    assert report["metrics"]["knn@1"] == 1.0 and report["metrics"]["map@20"] == 1.0
    assert report["class_names"] == ["cool", "warm"]
    assert report["data"]["classes_of_the_model"] is False
    # a split.json beside the model, of its own run's classes, is not this folder's split
    write_split_file(tmp_path / "split.json", TRAIN, TEST)
    assert resolve_split(embedder, root, None).train == expected["train"]
