"""Small generated rasters for the runtime tests: painted tiles, no-data, other data types.

Every helper writes a real GeoTIFF with rasterio and returns its path. The default grid is
EPSG:32633 (UTM 33N) at 10 m with its top-left corner at (500000, 5000000).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.transform import from_origin

ORIGIN = (500000.0, 5000000.0)
PIXEL = 10.0
UTM33 = "EPSG:32633"

#: Colours (uint8 RGB) whose brightest band is 0, 1 and 2: the band-mean model's classes.
RED = (200, 40, 30)
GREEN = (50, 180, 60)
BLUE = (20, 70, 220)


def utm_transform(pixel: float = PIXEL, origin: tuple[float, float] = ORIGIN) -> Affine:
    """The default north-up transform."""
    return from_origin(origin[0], origin[1], pixel, pixel)


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = UTM33,
    transform: Affine | None = None,
    nodata: float | None = None,
    mask: np.ndarray | None = None,
    **profile: object,
) -> Path:
    """Write ``data`` (bands x height x width) as a GeoTIFF.

    ``mask`` (height x width, True = valid) is written as an internal mask band.
    """
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    options = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": data.dtype,
        "transform": transform if transform is not None else utm_transform(),
        "nodata": nodata,
    }
    if crs is not None:
        options["crs"] = crs
    options.update(profile)
    path = Path(path)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **options) as dst:
        dst.write(data)
        if mask is not None:
            dst.write_mask(np.where(mask, 255, 0).astype(np.uint8))
    return path


def painted(
    colours: np.ndarray | list, tile_size: int, dtype: np.dtype | type = np.uint8
) -> np.ndarray:
    """A bands x (rows*T) x (cols*T) array whose tile (r, c) is filled with ``colours[r][c]``."""
    colours = np.asarray(colours)
    rows, cols, bands = colours.shape
    image = np.repeat(np.repeat(colours, tile_size, axis=0), tile_size, axis=1)
    return np.ascontiguousarray(image.transpose(2, 0, 1)).astype(dtype)


def painted_raster(
    path: Path, colours: np.ndarray | list, tile_size: int, **kwargs: object
) -> Path:
    """Write :func:`painted` tiles as a uint8 GeoTIFF (keywords go to :func:`write_raster`)."""
    return write_raster(path, painted(colours, tile_size), **kwargs)


def sparse_raster(
    path: Path,
    width: int,
    height: int,
    bands: int = 3,
    block: tuple[int, int, int, int] | None = None,
    value: int = 100,
) -> Path:
    """A large, mostly no-data uint8 GeoTIFF written sparsely (tiny on disk).

    Only ``block`` = ``(col_off, row_off, width, height)`` holds ``value``; the rest is no-data
    (0) in unwritten sparse blocks.
    """
    profile = {
        "driver": "GTiff",
        "count": bands,
        "height": height,
        "width": width,
        "dtype": "uint8",
        "crs": UTM33,
        "transform": utm_transform(),
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "sparse_ok": True,
    }
    with rasterio.open(path, "w", **profile) as dst:
        if block is not None:
            col, row, w, h = block
            window = rasterio.windows.Window(col, row, w, h)
            dst.write(np.full((bands, h, w), value, np.uint8), window=window)
    return Path(path)


def truncated_geotiff(path: Path) -> Path:
    """A striped GeoTIFF cut in half: its header opens, its lower strips fail to read."""
    rng = np.random.default_rng(0)
    write_raster(path, rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    return path
