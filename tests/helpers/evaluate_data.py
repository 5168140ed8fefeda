"""Generated one-colour scene folders, band-mean models and split files for the evaluate tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers.onnx_models import make_band_mean_model

#: Class folders, as scan_scene_folder lists them (sorted).
CLASSES = ["blue", "green", "red"]
#: The band-mean model's class i is band i: with these names it predicts each scene's colour.
BAND_CLASSES = ["red", "green", "blue"]
COLOURS = {"red": (200, 30, 20), "green": (25, 190, 40), "blue": (20, 35, 210)}


def write_scene(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    """A 12 x 12 scene of one colour with a little noise."""
    noise = np.random.default_rng(seed).integers(-8, 9, (12, 12, 3))
    pixels = np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def colour_model(path: Path) -> Path:
    """The band-mean model named so that it predicts each scene's colour."""
    return make_band_mean_model(path, bands=3, tile_size=8, class_names=BAND_CLASSES)


def write_split_file(path: Path, train: list[str], test: list[str]) -> Path:
    payload = {"seed": 7, "classes": BAND_CLASSES, "train": train, "val": [], "test": test}
    path.write_text(json.dumps(payload))
    return path


TRAIN = [f"{name}/{i}.png" for name in CLASSES for i in range(3)]
TEST = ["blue/3.png", "blue/4.png", "green/3.png", "green/odd.png", "red/3.png", "red/4.png"]
