"""Small georeferenced test rasters whose tiles have known colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

#: Where the generated rasters sit: UTM 33N, 10 m pixels.
CRS = "EPSG:32633"
ORIGIN = (500_000.0, 4_000_000.0)
PIXEL = 10.0

#: Colours of the 3 x 4 tiles of the generated raster; the brightest band is the class of the
#: band-mean model: rows of red, green, blue, red... tiles (4 of each class).
TILE_COLOURS = [
    [(200, 30, 30), (30, 200, 30), (30, 30, 200), (180, 60, 40)],
    [(60, 180, 40), (40, 60, 180), (220, 120, 10), (10, 220, 120)],
    [(120, 10, 220), (250, 200, 150), (150, 250, 200), (200, 150, 250)],
]
CLASS_NAMES = ["red", "green", "blue"]
TILE_SIZE = 32


def write_tile_colours(
    path: Path,
    colours: np.ndarray,
    tile_size: int,
    crs: str = CRS,
    pixel: float = PIXEL,
    origin: tuple[float, float] = ORIGIN,
) -> Path:
    """Write a uint8 RGB GeoTIFF of ``rows x cols`` tiles with its top-left corner at ``origin``;
    tile (r, c) is filled with ``colours[r, c]`` (3 values). Returns ``path``."""
    colours = np.asarray(colours, dtype=np.uint8)
    rows, cols, bands = colours.shape
    pixels = np.repeat(np.repeat(colours, tile_size, axis=0), tile_size, axis=1)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=cols * tile_size,
        height=rows * tile_size,
        count=bands,
        dtype="uint8",
        crs=crs,
        transform=Affine(pixel, 0.0, origin[0], 0.0, -pixel, origin[1]),
    ) as dst:
        dst.write(np.moveaxis(pixels, -1, 0))
    return path


def tile_bounds(
    row: int,
    col: int,
    tile_size: int,
    pixel: float = PIXEL,
    origin: tuple[float, float] = ORIGIN,
) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of tile (row, col) of a :func:`write_tile_colours` raster."""
    size = tile_size * pixel
    minx = origin[0] + col * size
    maxy = origin[1] - row * size
    return (minx, maxy - size, minx + size, maxy)


def expected_band_mean(colours: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact band-mean outputs (embedding, probabilities) of each tile of a
    :func:`write_tile_colours` raster, in tile-id (row-major) order."""
    from tests.helpers.onnx_models import band_mean_reference

    pixels = np.asarray(colours, dtype=np.float64).reshape(-1, 3) / 255.0
    return band_mean_reference(pixels[:, :, None, None], classes, embedding_dim=3)
