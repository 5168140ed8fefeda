"""Large synthetic GeoTIFFs for the benchmarks, written window by window (bounded memory).

Each band is a smooth random field (bilinear-upsampled coarse noise, so neighbouring tiles
differ the way landscapes do) plus uniform pixel noise of +-8, as uint8; the file is tiled in
512 px blocks and DEFLATE-compressed like a production orthomosaic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

#: Pixels per cell of the coarse random field.
FIELD_CELL = 256
#: The smooth field is computed on a grid this many times coarser, then repeated.
FIELD_STEP = 8


def _field_rows(coarse: np.ndarray, row0: int, rows: int, width: int) -> np.ndarray:
    """Rows ``row0 .. row0 + rows`` of the bilinear upsampling of ``coarse`` (bands x h x w),
    computed every ``FIELD_STEP`` pixels and repeated, as uint8."""
    step_rows, step_cols = -(-rows // FIELD_STEP), -(-width // FIELD_STEP)
    ys = (row0 + np.arange(step_rows, dtype=np.float32) * FIELD_STEP + 0.5) / FIELD_CELL
    xs = (np.arange(step_cols, dtype=np.float32) * FIELD_STEP + 0.5) / FIELD_CELL
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
    columns = coarse[:, y0] * (1 - fy) + coarse[:, y0 + 1] * fy
    small = (columns[:, :, x0] * (1 - fx) + columns[:, :, x0 + 1] * fx).astype(np.uint8)
    full = np.repeat(np.repeat(small, FIELD_STEP, axis=1), FIELD_STEP, axis=2)
    return full[:, :rows, :width]


def write_synthetic_raster(
    path: Path, width: int, height: int | None = None, bands: int = 3, seed: int = 0
) -> Path:
    """Write a ``width`` x ``height`` uint8 GeoTIFF (EPSG:32633, 1 m) and return its path."""
    height = height or width
    rng = np.random.default_rng(seed)
    shape = (bands, height // FIELD_CELL + 2, width // FIELD_CELL + 2)
    coarse = rng.uniform(30, 220, shape).astype(np.float32)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 5000000.0, 1.0, 1.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "num_threads": "all_cpus",
        "bigtiff": "if_safer",
    }
    with rasterio.open(path, "w", **profile) as dst:
        for row0 in range(0, height, 512):
            rows = min(512, height - row0)
            strip = _field_rows(coarse, row0, rows, width)
            noise = np.frombuffer(rng.bytes(strip.size), np.uint8).reshape(strip.shape) & 15
            strip = strip + noise - np.uint8(8)  # field in [30, 220]: no wrap-around
            dst.write(strip, window=Window(0, row0, width, rows))
    return Path(path)
