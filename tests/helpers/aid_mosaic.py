"""A square GeoTIFF mosaic of real AID test scenes whose classes are known (needs shared data).

Each 150 x 150 cell holds one held-out test scene (from the shipped model's card): by default 4 x 4
of them, each of a different class (or the scenes asked for, e.g. by
``benchmarks/real_mosaic.py``), in EPSG:32633 at 50 cm/px; the scenes' classes are returned
row by row. Used to check that the models ``snca convert`` writes label every cell in Deepness and
GeoDeep as ``snca classify`` does, and that an image query of a cell's pixels finds its tile.
"""

from __future__ import annotations

import json
import math
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


def held_out_split() -> list[str]:
    """The shipped model's test split (from its card): paths relative to the AID folder, class
    by class."""
    card = Path(snca_cli.__file__).parent / "models" / "snca-aid150-lite0.card.json"
    return list(json.loads(card.read_text())["split"]["test"])


def held_out_scenes(classes: tuple[str, ...] = CLASSES, per_class: int = 1) -> list[str]:
    """The first ``per_class`` test-split scenes of each class, class by class (paths relative
    to the AID folder)."""
    test = held_out_split()
    return [
        scene
        for name in classes
        for scene in [p for p in test if p.split("/")[0] == name][:per_class]
    ]


def write_aid_mosaic(
    aid_dir: Path,
    path: Path,
    scenes: list[str] | None = None,
    *,
    block: int = 128,
    compress: str | None = None,
) -> list[str]:
    """Write the mosaic GeoTIFF of ``scenes`` (a square number of them, laid out row by row;
    default: one :func:`held_out_scenes` per class of :data:`CLASSES`, 4 x 4) to ``path``, tiled
    in ``block`` px blocks, compressed with ``compress`` (a GDAL name, e.g. ``"deflate"``) if
    given; return the class of each cell, row by row."""
    scenes = held_out_scenes() if scenes is None else scenes
    grid = math.isqrt(len(scenes))
    if grid < 1 or grid * grid != len(scenes):
        raise ValueError(f"a square mosaic needs a square number of scenes, not {len(scenes)}")
    pixels = np.zeros((3, grid * CELL, grid * CELL), np.uint8)
    for i, scene in enumerate(scenes):
        row, col = divmod(i, grid)
        image = np.asarray(Image.open(aid_dir / scene).convert("RGB").resize((CELL, CELL)))
        pixels[:, row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL] = image.transpose(
            2, 0, 1
        )
    profile = {
        "driver": "GTiff",
        "width": grid * CELL,
        "height": grid * CELL,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": Affine(PIXEL_M, 0, ORIGIN[0], 0, -PIXEL_M, ORIGIN[1]),
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "photometric": "RGB",
        **({"compress": compress} if compress else {}),
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
    with rasterio.open(mosaic) as src:
        grid = src.width // CELL
    return gpkg_cell_labels(output, grid)


def gpkg_cell_labels(gpkg: Path, grid: int, field: str = "class_name") -> list[str]:
    """The class (``field``) of each cell's tile in a GeoPackage of tiles (``row``, ``col``)
    that snca wrote for a ``grid`` x ``grid`` mosaic, row by row."""
    _, _, _, fields = pyogrio.raw.read(gpkg, layer=0)
    names = list(pyogrio.read_info(gpkg, layer=0)["fields"])
    rows, cols, labels = (fields[names.index(key)] for key in ("row", "col", field))
    by_cell = {(int(r), int(c)): str(label) for r, c, label in zip(rows, cols, labels, strict=True)}
    return [by_cell[divmod(i, grid)] for i in range(grid * grid)]


def cells(image: np.ndarray) -> list[np.ndarray]:
    """The 150 x 150 cells of an image (its last two axes), row by row."""
    grid = image.shape[-1] // CELL
    return [
        image[..., r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL]
        for r, c in (divmod(i, grid) for i in range(grid * grid))
    ]


def cell_labels(mask: np.ndarray, names: list[str]) -> tuple[list[str], float]:
    """The majority label of each cell of a per-pixel class-index ``mask`` (row by row) and the
    smallest share of a cell's pixels that carry its majority label."""
    labels, shares = [], []
    for cell in cells(mask):
        values, counts = np.unique(cell, return_counts=True)
        labels.append(names[int(values[counts.argmax()])])
        shares.append(counts.max() / cell.size)
    return labels, float(min(shares))


def mosaic_tiles(mosaic: Path) -> np.ndarray:
    """The mosaic's cells as the model's input (N x 3 x 150 x 150 in [0, 1]), row by row."""
    with rasterio.open(mosaic) as src:
        pixels = src.read().astype(np.float32) / 255.0
    return np.stack(cells(pixels))
