"""benchmarks/mosaic_check.py: the grid, the GeoTIFF it writes, the precision measure, and the
whole check on generated scenes with a model of exactly known outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from mosaic_check import (
    MOSAIC_CRS,
    PIXEL_METRES,
    cell_labels,
    cell_of,
    check,
    grid_shape,
    leave_one_out_precision,
    model_split,
    scene_pixels,
    write_mosaic,
)
from PIL import Image

from snca_cli.errors import SncaError
from snca_cli.runtime.scene_images import save_split, scan_scene_folder
from snca_cli.tasks.evaluate import open_onnx
from tests.helpers.onnx_models import make_band_mean_model

CLASSES = ["a_red", "b_green", "c_blue"]  # sorted folder names; class i = brightest band i


def test_grid_shape_is_nearly_square():
    assert grid_shape(2000) == (45, 45)
    assert grid_shape(16) == (4, 4)
    assert grid_shape(15) == (4, 4)
    assert grid_shape(12) == (3, 4)
    assert grid_shape(1) == (1, 1)
    with pytest.raises(SncaError, match="no test scene"):
        grid_shape(0)


def test_cell_labels_fill_rows_and_mark_empty_cells():
    assert cell_labels(np.array([4, 5, 6, 7, 8]), 2, 3).tolist() == [[4, 5, 6], [7, 8, -1]]


def test_cell_of_a_tile_window():
    assert cell_of((300, 150, 150, 150), 150) == (1, 2)


def test_leave_one_out_precision_by_hand():
    embeddings = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    # k = 1: item 0 -> 1 (same), 1 -> 2 (0.96 > 0.8; other), 2 -> 1 (other), 3 -> 2 (same)
    assert leave_one_out_precision(embeddings, labels, 1) == 0.5
    # k = 2: 0 -> 1, 2 (1/2); 1 -> 2, 0 (1/2); 2 -> 1, 3 (1/2); 3 -> 2, 1 (1/2)
    assert leave_one_out_precision(embeddings, labels, 2) == 0.5


def test_mosaic_is_georeferenced_tiled_and_masks_empty_cells(tmp_path):
    rng = np.random.default_rng(0)
    scenes = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    path = tmp_path / "mosaic.tif"
    write_mosaic(path, iter(scenes), 5, 8)  # 2 x 3 cells, the last one empty
    with rasterio.open(path) as src:
        assert (src.width, src.height, src.count) == (24, 16, 3)
        assert src.crs.to_string() == MOSAIC_CRS
        assert (src.transform.a, -src.transform.e) == (PIXEL_METRES, PIXEL_METRES)
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        pixels, mask = src.read(), src.dataset_mask()
    for index, scene in enumerate(scenes):
        row, col = divmod(index, 3)
        cell = pixels[:, row * 8 : (row + 1) * 8, col * 8 : (col + 1) * 8]
        np.testing.assert_array_equal(cell, np.moveaxis(scene, -1, 0))
    assert (mask[8:, 16:] == 0).all() and (mask[:, :16] == 255).all() and (mask[:8] == 255).all()


def test_grey_scenes_are_refused(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "grey.png")
    with pytest.raises(SncaError, match="not an 8-bit RGB image"):
        scene_pixels(tmp_path / "grey.png", 8)


def _scenes(root: Path, rng: np.random.Generator) -> dict[str, list[str]]:
    """Five test, one val and one train PNG per class, 40 px, brightest in the class's band,
    except one red-class test scene that is bluish (the model must get it wrong)."""
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i, part in enumerate(["train", "val"] + ["test"] * 5):
            pixels = rng.integers(0, 100, (40, 40, 3))
            pixels[..., 2 if (label, i) == (0, 6) else label] += 120
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
            split[part].append(f"{name}/{i}.png")
    return split


def test_mosaic_scores_exactly_like_the_images(tmp_path):
    data = tmp_path / "scenes"
    split = _scenes(data, np.random.default_rng(1))
    save_split(tmp_path / "split.json", scan_scene_folder(data), split, 0)
    (tmp_path / "model").mkdir()
    model = make_band_mean_model(tmp_path / "model" / "m.onnx", tile_size=32, class_names=CLASSES)
    report = check(model, data, tmp_path / "split.json", tmp_path / "out", with_knn=True)
    assert report["test_scenes"] == 15 and report["mosaic"]["grid"] == [4, 4]
    assert report["mosaic"]["tiles_classified"] == 15  # the empty 16th cell is masked out
    assert report["tile_accuracy"] == report["image_softmax_accuracy"] == pytest.approx(14 / 15)
    assert report["search_precision@10"] == pytest.approx(report["image_precision@10"])
    assert report["max_embedding_difference"] < 1e-6
    assert report["agree"] is True
    assert 0.0 < report["image_knn@10"] <= 1.0


def test_the_split_comes_from_the_model_card_when_no_split_file_is_beside(tmp_path):
    data = tmp_path / "scenes"
    split = _scenes(data, np.random.default_rng(2))
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=32, class_names=CLASSES)
    card = {
        "split": {
            "seed": 7,
            "train": split["train"],
            "val": split["val"],
            "test": split["test"][:4],
        }
    }
    (tmp_path / "m.card.json").write_text(json.dumps(card))
    chosen = model_split(open_onnx(model), data, None)
    assert (chosen.source, chosen.test, chosen.seed) == (
        "model card m.card.json",
        split["test"][:4],
        7,
    )
    save_split(tmp_path / "split.json", scan_scene_folder(data), split, 0)
    chosen = model_split(open_onnx(model), data, None)  # split.json beside the model wins
    assert chosen.test == split["test"]
