"""A cap on GDAL's process-wide raster block cache while rasters are read tile by tile.

GDAL's default cache, 5 % of RAM, lets memory grow with the raster: while a raster is open the
cache is capped at 64 MiB, or what one row of tiles needs for rasters over about 18,000 px wide,
so peak memory does not grow with the raster; a ``GDAL_CACHEMAX`` environment variable set by
the user is left in charge.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import numpy as np
import rasterio
from rasterio.env import get_gdal_config, set_gdal_config

#: Bounds of GDAL's raster block cache while a raster is open, in bytes (see
#: :func:`block_cache_bytes`).
BLOCK_CACHE_MIN_BYTES = 64 * 1024 * 1024
BLOCK_CACHE_MAX_BYTES = 256 * 1024 * 1024


class _BlockCacheCap:
    """Caps on GDAL's process-wide raster block cache, held by any number of users at once.

    While users hold caps, GDAL's cache maximum is the smallest of them and of the value found
    when the first user came (GDALSetCacheMax64: it takes effect at once, even when GDAL's cache
    was initialised earlier, as in QGIS); when the last user leaves, that value is restored.
    With a ``GDAL_CACHEMAX`` environment variable the user is in charge: nothing is changed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: list[int] = []
        self._found: int | None = None  # the maximum before the first cap; None: hands off

    def acquire(self, limit: int) -> None:
        """Hold a cap of ``limit`` bytes."""
        with self._lock:
            if not self._limits:
                user_set = "GDAL_CACHEMAX" in os.environ
                self._found = None if user_set else int(get_gdal_config("GDAL_CACHEMAX"))
            self._limits.append(int(limit))
            self._apply()

    def release(self, limit: int) -> None:
        """Give back a cap taken with :meth:`acquire`."""
        with self._lock:
            self._limits.remove(int(limit))
            self._apply()

    def _apply(self) -> None:
        if self._found is not None:
            wanted = min([self._found, *self._limits])
            if int(get_gdal_config("GDAL_CACHEMAX")) != wanted:
                set_gdal_config("GDAL_CACHEMAX", wanted)


_BLOCK_CACHE_CAP = _BlockCacheCap()


def block_cache_bytes(source: rasterio.io.DatasetReader, tile_rows: int) -> int:
    """The GDAL block cache for reading ``source`` row of tiles by row of tiles, in bytes.

    Enough for every band's blocks under one row of tiles (``tile_rows`` raster rows) plus the
    next row of blocks, so no block is decoded twice, within ``BLOCK_CACHE_MIN_BYTES`` ..
    ``BLOCK_CACHE_MAX_BYTES``: 64 MiB up to about 18,000 px wide for 3 bands of 8 bits in 512 px
    blocks, then growing with the width (not the area) of the raster.
    """
    block_rows = source.block_shapes[0][0]
    pixel_bytes = sum(np.dtype(dtype).itemsize for dtype in source.dtypes)
    needed = source.width * (tile_rows + 2 * block_rows) * pixel_bytes
    return int(min(max(needed, BLOCK_CACHE_MIN_BYTES), BLOCK_CACHE_MAX_BYTES))


@contextlib.contextmanager
def bounded_block_cache(limit: int) -> Iterator[None]:
    """Cap GDAL's raster block cache at ``limit`` bytes inside the ``with`` block.

    GDAL's cache is global to the process: with nested or concurrent caps the smallest one
    applies; the cache is never raised above what it was, and is restored when the last cap is
    released. When the user set the ``GDAL_CACHEMAX`` environment variable, GDAL's own setting
    is left alone.
    """
    _BLOCK_CACHE_CAP.acquire(limit)
    try:
        yield
    finally:
        _BLOCK_CACHE_CAP.release(limit)
