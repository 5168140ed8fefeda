"""Tiny generated scene folders for the training tests (no torch needed here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: Mean colour of each generated class: the classes are told apart by colour.
CLASS_COLOURS = {"fields": (60, 170, 60), "roofs": (180, 70, 60), "water": (40, 70, 170)}


def make_scene_folder(
    root: Path, per_class: int = 8, size: int = 32, seed: int = 0, classes: int = 3
) -> Path:
    """``root/<class>/<i>.png``: noisy images of each class's colour, sizes varying around
    ``size``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for name, colour in list(CLASS_COLOURS.items())[:classes]:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = size + int(rng.integers(0, 9)), size + int(rng.integers(0, 9))
            noise = rng.normal(0.0, 35.0, (height, width, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{i:02d}.png")
    return root
