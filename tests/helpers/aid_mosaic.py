"""A 4 x 4 GeoTIFF mosaic of real AID test scenes whose classes are known (needs shared data).

Each 150 x 150 cell holds one held-out test scene (from the shipped model's card) of a different
class (or the 16 scenes asked for), in EPSG:32633 at 50 cm/px; the scenes' classes are returned
row by row. Used to check that the models ``snca convert`` writes label every cell in Deepness and
GeoDeep as ``snca classify`` does, and that an image query of a cell's pixels finds its tile.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
import rasterio
from affine import Affine
from PIL import Image

import snca_cli

CELL = 150
GRID = 4
PIXEL_M = 0.5
ORIGIN = (500000.0, 5800000.0)
#: One test scene per class: these 16 are classified right by the shipped model.
CLASSES = (
    "Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Parking",
    "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow", "Mountain", "Park",
)  # fmt: skip


def held_out_scenes(classes: tuple[str, ...] = CLASSES, per_class: int = 1) -> list[str]:
    """The first ``per_class`` test-split scenes of each class, class by class (paths relative
    to the AID folder)."""
    card = Path(snca_cli.__file__).parent / "models" / "snca-aid150-lite0.card.json"
    test = json.loads(card.read_text())["split"]["test"]
    return [
        scene
        for name in classes
        for scene in [p for p in test if p.split("/")[0] == name][:per_class]
    ]


def write_aid_mosaic(aid_dir: Path, path: Path, scenes: list[str] | None = None) -> list[str]:
    """Write the mosaic GeoTIFF of ``scenes`` (GRID x GRID of them, row by row; default: one
    :func:`held_out_scenes` per class of :data:`CLASSES`) to ``path``; return the class of each
    cell, row by row."""
    scenes = held_out_scenes() if scenes is None else scenes
    assert len(scenes) == GRID * GRID, f"the mosaic holds {GRID * GRID} scenes"
    pixels = np.zeros((3, GRID * CELL, GRID * CELL), np.uint8)
    for i, scene in enumerate(scenes):
        row, col = divmod(i, GRID)
        image = np.asarray(Image.open(aid_dir / scene).convert("RGB").resize((CELL, CELL)))
        pixels[:, row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL] = image.transpose(
            2, 0, 1
        )
    profile = {
        "driver": "GTiff",
        "width": GRID * CELL,
        "height": GRID * CELL,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": Affine(PIXEL_M, 0, ORIGIN[0], 0, -PIXEL_M, ORIGIN[1]),
        "tiled": True,
        "blockxsize": 128,
        "blockysize": 128,
        "photometric": "RGB",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    return [scene.split("/")[0] for scene in scenes]


def snca_labels(mosaic: Path, model_path: Path, output: Path) -> list[str]:
    """The class ``snca classify`` gives each cell of the mosaic, row by row."""
    # imported here: the QGIS tests must not import onnxruntime before QgsApplication exists
    from snca_cli.runtime.onnx_model import OnnxModel
    from snca_cli.tasks.classify import classify_raster

    model = OnnxModel(model_path)
    classify_raster(mosaic, model, output)
    _, _, _, fields = pyogrio.raw.read(output)
    names = list(pyogrio.read_info(output, layer=0)["fields"])
    rows, cols, labels = (fields[names.index(key)] for key in ("row", "col", "class_name"))
    by_cell = {(int(r), int(c)): str(label) for r, c, label in zip(rows, cols, labels, strict=True)}
    return [by_cell[divmod(i, GRID)] for i in range(GRID * GRID)]


def cell_labels(mask: np.ndarray, names: list[str]) -> tuple[list[str], float]:
    """The majority label of each cell of a per-pixel class-index ``mask`` (row by row) and the
    smallest share of a cell's pixels that carry its majority label."""
    labels, shares = [], []
    for i in range(GRID * GRID):
        row, col = divmod(i, GRID)
        cell = mask[row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL].ravel()
        values, counts = np.unique(cell, return_counts=True)
        labels.append(names[int(values[counts.argmax()])])
        shares.append(counts.max() / cell.size)
    return labels, float(min(shares))


def mosaic_tiles(mosaic: Path) -> np.ndarray:
    """The mosaic's cells as the model's input (N x 3 x 150 x 150 in [0, 1]), row by row."""
    with rasterio.open(mosaic) as src:
        pixels = src.read().astype(np.float32) / 255.0
    return np.stack(
        [
            pixels[:, r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL]
            for r, c in (divmod(i, GRID) for i in range(GRID * GRID))
        ]
    )
