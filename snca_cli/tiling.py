"""Cut a georeferenced raster into model-sized tiles and read them with windowed I/O.

The tiling grid is the raster's own pixel grid, or, when the model's ground resolution differs
from the raster's (``--resolution``), a grid in the raster's own CRS at the target resolution read
through a :class:`rasterio.vrt.WarpedVRT`. Every read is one tile-sized window, so memory does not
grow with the size of the raster.

Conventions (also shown in ``snca classify --help``):

* **Overlap**: a value >= 1 is pixels; a value in (0, 1) is a fraction of the tile
  (0.25 = 25 %). The stride is ``tile_size - overlap``.
* **Edges**: ``shift`` (default) moves the last tile of each row and column inward so it ends on
  the raster's edge: every pixel is covered and no tile reaches outside the raster. ``pad`` keeps
  the regular stride and lets the last tiles reach past the edge; the pixels outside the raster
  are no-data (they lower the tile's valid fraction).
* **Resolution**: ``auto`` uses the model's resolution when it has one, else the raster's;
  ``native`` never resamples; a number is metres per pixel. A raster is resampled when its
  resolution differs from the target by more than 1 %: ``average`` when coarsening, ``bilinear``
  when refining. For a geographic CRS the metres are converted to degrees at the raster's centre
  latitude on the WGS84 ellipsoid, so tiles are square on the ground at that latitude.
* **Scaling**: raw values are divided by the model's ``input_scale`` for the raster's data type
  (e.g. uint8 / 255, uint16 / 65535) and clipped to [0, 1]; ``stretch="percentile"`` instead maps
  the 2nd..98th percentile of each band, computed on up to 64 tiles spread over the raster, to
  [0, 1].
* **No-data**: a pixel is valid when every selected band is valid in the raster's mask (no-data
  value, alpha band or mask band). Tiles with a valid fraction below ``min_valid`` are skipped;
  in the tiles kept, invalid pixels are filled with the tile's mean valid value per band, so they
  never reach the model as real values.
* **Memory**: while a raster is open, GDAL's process-wide raster block cache is capped (see
  :func:`block_cache_bytes` and :func:`bounded_block_cache`): 64 MiB, or what one row of tiles
  needs for rasters over about 18,000 px wide, so peak memory does not grow with the raster; a
  ``GDAL_CACHEMAX`` environment variable set by the user is left in charge.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import MaskFlags, Resampling
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from snca_cli.errors import SncaError
from snca_cli.metadata import ModelMetadata

#: Edge policies for the last row and column of tiles.
EDGE_POLICIES = ("shift", "pad")
#: Stretches that replace the model's ``input_scale``.
STRETCHES = ("percentile",)
#: Percentiles mapped to 0 and 1 by the percentile stretch.
STRETCH_PERCENTILES = (2.0, 98.0)
#: How many tiles, spread over the raster, the percentile stretch samples.
STRETCH_SAMPLE_TILES = 64
#: How pixel validity is found: every pixel valid (no no-data value, mask or alpha band), a
#: plain integer no-data value compared with the pixels read, or the raster's mask bands.
VALIDITY_ALL, VALIDITY_NODATA, VALIDITY_MASK = "all", "nodata", "mask"
#: Relative resolution difference under which a raster is read without resampling.
RESOLUTION_TOLERANCE = 0.01
#: Bounds of GDAL's raster block cache while a raster is open, in bytes (see
#: :func:`block_cache_bytes`). GDAL's default, 5 % of RAM, lets memory grow with the raster.
BLOCK_CACHE_MIN_BYTES = 64 * 1024 * 1024
BLOCK_CACHE_MAX_BYTES = 256 * 1024 * 1024

# WGS84 ellipsoid, for metres per degree at a latitude.
_WGS84_A = 6378137.0
_WGS84_E2 = 6.69437999014e-3


@dataclass
class TilingOptions:
    """How a raster is cut into tiles and turned into model input.

    Attributes:
        overlap: overlap between neighbouring tiles: pixels when >= 1, a fraction of the tile
            when in (0, 1) (0.25 = 25 %), 0 for none.
        resolution: ``"auto"`` (the model's resolution when it has one, else native),
            ``"native"`` (never resample) or metres per pixel.
        bands: 1-based raster bands to feed the model, in order, e.g. ``(3, 2, 1)``; ``None``
            takes the first ``input_bands`` bands.
        min_valid: tiles with a smaller fraction of valid pixels are skipped (0..1).
        stretch: ``None`` scales by the model's ``input_scale``; ``"percentile"`` maps the
            2..98 % percentiles of each band (sampled over the raster) to [0, 1].
        edge: ``"shift"`` moves edge tiles inward; ``"pad"`` lets them reach past the edge.
    """

    overlap: float = 0.0
    resolution: str | float = "auto"
    bands: tuple[int, ...] | None = None
    min_valid: float = 0.5
    stretch: str | None = None
    edge: str = "shift"

    def overlap_pixels(self, tile_size: int) -> int:
        """The overlap in pixels for tiles of ``tile_size``; raise SncaError when impossible."""
        if self.overlap < 0:
            raise SncaError(f"overlap must not be negative (got {self.overlap})")
        pixels = round(self.overlap * tile_size) if self.overlap < 1 else round(self.overlap)
        if pixels >= tile_size:
            raise SncaError(
                f"overlap of {pixels} px leaves no stride for {tile_size} px tiles; "
                f"use less than {tile_size} px or 100 %"
            )
        return pixels

    def check(self) -> None:
        """Raise SncaError for an option value outside its range."""
        if not 0.0 <= self.min_valid <= 1.0:
            raise SncaError(f"min-valid must be between 0 and 1 (got {self.min_valid})")
        if self.edge not in EDGE_POLICIES:
            raise SncaError(f"edge must be one of {', '.join(EDGE_POLICIES)} (got {self.edge!r})")
        if self.stretch is not None and self.stretch not in STRETCHES:
            raise SncaError(f"stretch must be one of {', '.join(STRETCHES)} (got {self.stretch!r})")
        if isinstance(self.resolution, str):
            if self.resolution not in ("auto", "native"):
                raise SncaError(
                    f"resolution must be auto, native or metres per pixel (got {self.resolution!r})"
                )
        elif not self.resolution > 0:
            raise SncaError(f"resolution must be positive (got {self.resolution})")
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            raise SncaError(f"bands are numbered from 1 (got {self.bands})")


@dataclass(frozen=True)
class Tile:
    """One tile of a :class:`RasterTiling`.

    Attributes:
        tile_id: ``row * n_cols + col``, unique within the tiling.
        row, col: position in the tile grid.
        window: ``(col_off, row_off, width, height)`` in pixels of the tiling grid.
        bounds: ``(minx, miny, maxx, maxy)`` in the raster's CRS: the window through the grid
            transform.
        valid_fraction: fraction of valid pixels, or None until the tile has been read.
    """

    tile_id: int
    row: int
    col: int
    window: tuple[int, int, int, int]
    bounds: tuple[float, float, float, float]
    valid_fraction: float | None = None


def metres_per_degree(latitude: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``latitude`` on the WGS84 ellipsoid."""
    phi = math.radians(latitude)
    w = math.sqrt(1.0 - _WGS84_E2 * math.sin(phi) ** 2)
    per_lon = math.pi / 180.0 * _WGS84_A * math.cos(phi) / w
    per_lat = math.pi / 180.0 * _WGS84_A * (1.0 - _WGS84_E2) / w**3
    return per_lon, per_lat


def tile_offsets(length: int, tile_size: int, stride: int, edge: str) -> np.ndarray:
    """Start offsets of the tiles along one axis of ``length`` pixels.

    ``shift``: ``0, stride, 2 stride, ...`` with the last one moved to ``length - tile_size``;
    ``pad``: ``0, stride, ...`` until a tile reaches the end, possibly past it.
    """
    count = math.ceil((length - tile_size) / stride) + 1 if length > tile_size else 1
    offsets = np.arange(count, dtype=np.int64) * stride
    if edge == "shift":
        offsets[-1] = length - tile_size
    return offsets


def _owner_boundaries(offsets: np.ndarray, tile_size: int) -> np.ndarray:
    """Pixel coordinates where the nearest tile centre changes from one tile to the next."""
    centres = offsets + tile_size / 2.0
    return (centres[:-1] + centres[1:]) / 2.0


def nearest_tiles(offsets: np.ndarray, tile_size: int, coords: np.ndarray) -> np.ndarray:
    """For pixel coordinates along one axis, the index of the tile whose centre is nearest."""
    return np.searchsorted(_owner_boundaries(offsets, tile_size), coords, side="right")


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


class RasterTiling:
    """An opened raster and its tile grid; read tiles as model input.

    Open with :meth:`open`; close with :meth:`close` or use as a context manager. The dataset is
    not thread-safe: use one ``RasterTiling`` per thread.

    Attributes:
        path: the raster file.
        crs: the raster's CRS (the tiling grid is always in it).
        transform: the tiling grid's affine transform (the raster's own when not resampled).
        width, height: the tiling grid's size in pixels.
        resampled: whether the grid differs from the raster's (read through a WarpedVRT).
        tile_size: tile edge in grid pixels (the model's).
        stride: distance between neighbouring tiles in grid pixels.
        n_rows, n_cols: the tile grid's shape.
        bands: the 1-based raster bands read, in order.
    """

    def __init__(
        self,
        path: Path,
        source: rasterio.io.DatasetReader,
        dataset: rasterio.io.DatasetReader | WarpedVRT,
        metadata: ModelMetadata,
        options: TilingOptions,
        bands: tuple[int, ...],
        resources: contextlib.ExitStack,
    ) -> None:
        self.path = path
        self._resources = resources  # closes the datasets and releases the block-cache cap
        self._source = source
        self._dataset = dataset
        self.options = options
        self.crs = dataset.crs
        self.transform: Affine = dataset.transform
        self.width: int = dataset.width
        self.height: int = dataset.height
        self.resampled = dataset is not source
        self.tile_size = metadata.tile_size
        self.stride = self.tile_size - options.overlap_pixels(self.tile_size)
        self.bands = bands
        if self.width < self.tile_size or self.height < self.tile_size:
            scale = " after resampling" if self.resampled else ""
            raise SncaError(
                f"raster {path.name} is {self.width} x {self.height} px{scale}, smaller than one "
                f"{self.tile_size} x {self.tile_size} px tile of the model"
            )
        self._col_offsets = tile_offsets(self.width, self.tile_size, self.stride, options.edge)
        self._row_offsets = tile_offsets(self.height, self.tile_size, self.stride, options.edge)
        self.n_rows = len(self._row_offsets)
        self.n_cols = len(self._col_offsets)
        self._band_list = list(bands)
        self._validity, self._nodata = _validity_source(dataset, bands)
        self._scale_offset, self._scale_divisor, self._scale_clips = self._scaling(metadata)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path | str, metadata: ModelMetadata, options: TilingOptions | None = None
    ) -> RasterTiling:
        """Open ``path`` and build its tile grid for a model; raise SncaError on bad input.

        Refuses a missing or unreadable file, a raster without CRS or georeferencing, a rotated
        raster, band choices the model cannot take and a raster smaller than one tile.
        """
        options = options or TilingOptions()
        options.check()
        path = Path(path)
        if not path.exists():
            raise SncaError(f"raster {path} does not exist")
        if path.is_dir():
            raise SncaError(f"raster {path} is a folder, not a raster file")
        resources = contextlib.ExitStack()
        try:
            try:
                source = resources.enter_context(rasterio.open(path))
            except RasterioError as exc:
                raise SncaError(
                    f"{path} is not a raster GDAL can read: {_first_line(exc)}"
                ) from None
            bands = _check_source(path, source, metadata, options)
            dataset = _resampled(source, _target_resolution_m(metadata, options))
            if dataset is not source:
                resources.enter_context(dataset)
            tile_rows = math.ceil(metadata.tile_size * dataset.res[1] / source.res[1])
            resources.enter_context(bounded_block_cache(block_cache_bytes(source, tile_rows)))
            return cls(path, source, dataset, metadata, options, bands, resources)
        except BaseException:
            resources.close()
            raise

    def close(self) -> None:
        """Close the raster (and its WarpedVRT) and release the block-cache cap; idempotent."""
        self._resources.close()

    def __enter__(self) -> RasterTiling:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- geometry ------------------------------------------------------------------------

    @property
    def tile_count(self) -> int:
        """Number of tiles in the grid (skipped ones included)."""
        return self.n_rows * self.n_cols

    @property
    def pixel_area(self) -> float:
        """Area of one grid pixel in CRS units squared."""
        return abs(self.transform.a * self.transform.e)

    @property
    def col_offsets(self) -> np.ndarray:
        """Column offsets (grid pixels) of the tile columns."""
        return self._col_offsets.copy()

    @property
    def row_offsets(self) -> np.ndarray:
        """Row offsets (grid pixels) of the tile rows."""
        return self._row_offsets.copy()

    def tile(self, row: int, col: int) -> Tile:
        """The tile at ``(row, col)`` of the grid (valid fraction not yet known)."""
        if not (0 <= row < self.n_rows and 0 <= col < self.n_cols):
            raise IndexError(f"tile ({row}, {col}) outside the {self.n_rows} x {self.n_cols} grid")
        window = (
            int(self._col_offsets[col]),
            int(self._row_offsets[row]),
            self.tile_size,
            self.tile_size,
        )
        col_off, row_off = window[0], window[1]
        x0, y0 = self.transform @ (col_off, row_off + self.tile_size)
        x1, y1 = self.transform @ (col_off + self.tile_size, row_off)
        bounds = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        return Tile(row * self.n_cols + col, row, col, window, tuple(float(v) for v in bounds))

    def tiles(self) -> Iterator[Tile]:
        """Every tile of the grid, row by row."""
        for row in range(self.n_rows):
            for col in range(self.n_cols):
                yield self.tile(row, col)

    def tile_at(self, x: float, y: float) -> Tile | None:
        """The tile holding the point ``(x, y)`` (raster CRS), or None outside the raster.

        With overlap several tiles hold a point; the one whose centre is nearest wins.
        """
        col_f, row_f = ~self.transform @ (x, y)
        if not (0 <= col_f < self.width and 0 <= row_f < self.height):
            return None
        col = int(nearest_tiles(self._col_offsets, self.tile_size, np.array([col_f]))[0])
        row = int(nearest_tiles(self._row_offsets, self.tile_size, np.array([row_f]))[0])
        return self.tile(row, col)

    def owned_pixels(self) -> np.ndarray:
        """Pixels of the raster each tile owns (nearest tile centre), as an n_rows x n_cols array.

        Every pixel of the grid is owned by exactly one tile, so these counts sum to
        ``width * height`` however much tiles overlap: the basis of per-class areas.
        """
        cols = np.bincount(
            nearest_tiles(self._col_offsets, self.tile_size, np.arange(self.width) + 0.5),
            minlength=self.n_cols,
        )
        rows = np.bincount(
            nearest_tiles(self._row_offsets, self.tile_size, np.arange(self.height) + 0.5),
            minlength=self.n_rows,
        )
        return np.outer(rows, cols)

    # -- reading -------------------------------------------------------------------------

    def read(self, tiles: Sequence[Tile]) -> tuple[np.ndarray, np.ndarray]:
        """Read tiles as model input, whatever their valid fraction.

        Returns ``(batch, valid_fractions)``: float32 N x bands x T x T in [0, 1] with invalid
        pixels filled (see the module docstring; a tile without valid pixels is all 0), and the
        N valid fractions.
        """
        batch = np.empty((len(tiles), len(self.bands), self.tile_size, self.tile_size), np.float32)
        fractions = np.array(
            [self._read(tile, batch[i], keep_all=True)[0] for i, tile in enumerate(tiles)],
            dtype=np.float64,
        )
        return batch, fractions

    def read_tile(self, tile: Tile) -> tuple[np.ndarray | None, float]:
        """Read one tile as model input unless it has too few valid pixels.

        Returns ``(pixels, valid_fraction)``; ``pixels`` (float32 bands x T x T in [0, 1]) is
        None when the valid fraction is below ``min_valid`` or zero.
        """
        pixels = np.empty((len(self.bands), self.tile_size, self.tile_size), np.float32)
        fraction, kept = self.read_into(tile, pixels)
        return (pixels if kept else None), fraction

    def read_into(self, tile: Tile, out: np.ndarray) -> tuple[float, bool]:
        """Read one tile as model input into ``out`` unless it has too few valid pixels.

        ``out`` is a float32 bands x T x T array, e.g. a slot of a batch being filled. Returns
        ``(valid_fraction, kept)``; when not kept (fraction below ``min_valid`` or zero) ``out``
        is left as it was. Reads one window of pixels, plus one of masks only when the raster
        has mask or alpha bands; a tile whose mask rules it out is not read.
        """
        return self._read(tile, out, keep_all=False)

    def _read(self, tile: Tile, out: np.ndarray, keep_all: bool) -> tuple[float, bool]:
        clipped = self._clipped(tile)
        if clipped is None:  # entirely outside the grid
            if keep_all:
                out[...] = 0.0
            return 0.0, keep_all
        window, target = clipped
        area = float(self.tile_size * self.tile_size)
        if self._validity == VALIDITY_MASK:
            valid = self._valid_in(window, None)
            fraction = np.count_nonzero(valid) / area
            if not (keep_all or self._keeps(fraction)):
                return fraction, False
            raw = self._guarded(self._dataset.read, self._band_list, window=window)
        else:
            raw = self._guarded(self._dataset.read, self._band_list, window=window)
            valid = self._valid_in(window, raw)
            count = raw.shape[1] * raw.shape[2] if valid is None else np.count_nonzero(valid)
            fraction = count / area
            if not (keep_all or self._keeps(fraction)):
                return fraction, False
        whole = raw.shape[1:] == (self.tile_size, self.tile_size)
        self._scale_into(raw, out if whole else out[:, target[0], target[1]])
        if fraction < 1.0:
            tile_valid = np.zeros((self.tile_size, self.tile_size), dtype=bool)
            tile_valid[target] = True if valid is None else valid
            _fill_invalid(out, tile_valid)
        return fraction, True

    def _keeps(self, fraction: float) -> bool:
        return fraction > 0.0 and fraction >= self.options.min_valid

    def _clipped(self, tile: Tile) -> tuple[Window, tuple[slice, slice]] | None:
        """The part of a tile's window inside the grid, and where it goes in the tile array."""
        col_off, row_off, width, height = tile.window
        c0, r0 = max(col_off, 0), max(row_off, 0)
        c1, r1 = min(col_off + width, self.width), min(row_off + height, self.height)
        if c1 <= c0 or r1 <= r0:
            return None
        target = (slice(r0 - row_off, r1 - row_off), slice(c0 - col_off, c1 - col_off))
        return Window(c0, r0, c1 - c0, r1 - r0), target

    def _valid_in(self, window: Window, raw: np.ndarray | None) -> np.ndarray | None:
        """Which pixels of ``window`` are valid in every selected band, or None when all are.

        From the raster's mask bands, or, for a plain integer no-data value, from ``raw`` (the
        window's pixels) compared with it as GDAL's no-data mask does.
        """
        if self._validity == VALIDITY_ALL:
            return None
        if self._validity == VALIDITY_NODATA:
            assert raw is not None and self._nodata is not None
            return np.all(raw != self._nodata, axis=0)
        masks = self._guarded(self._dataset.read_masks, self._band_list, window=window)
        return np.all(masks > 0, axis=0)

    def _guarded(self, read, indexes: list[int], window: Window) -> np.ndarray:
        """Run a rasterio read, turning I/O failures (a corrupt file) into one-line errors."""
        try:
            return read(indexes, window=window)
        except RasterioError as exc:
            detail = _first_line(exc.__cause__ or exc)
            raise SncaError(
                f"cannot read {self.path.name} (corrupt or truncated?): {detail}"
            ) from None

    # -- scaling -------------------------------------------------------------------------

    def _scale_into(self, raw: np.ndarray, out: np.ndarray) -> None:
        """``(raw - offset) / divisor`` per band, clipped to [0, 1], written into ``out``."""
        if self._scale_offset is None:
            np.divide(raw, self._scale_divisor, out=out, casting="unsafe")
        else:
            np.subtract(raw, self._scale_offset, out=out, casting="unsafe")
            np.divide(out, self._scale_divisor, out=out)
        if self._scale_clips:
            np.clip(out, 0.0, 1.0, out=out)

    def _scaling(self, metadata: ModelMetadata) -> tuple[np.ndarray | None, np.ndarray, bool]:
        """Per-band offset (None for 0) and divisor taking raw values to [0, 1], and whether
        the result needs clipping (not for unsigned integers divided by at least their max)."""
        ones = np.ones((len(self.bands), 1, 1), np.float32)
        if self.options.stretch == "percentile":
            low, high = self._percentiles()
            return low[:, None, None], np.maximum(high - low, 1e-12)[:, None, None], True
        dtype = np.dtype(self._dataset.dtypes[self.bands[0] - 1])
        divisor = metadata.input_scale.get(dtype.name)
        if divisor is None and dtype.kind == "f":
            divisor = metadata.input_scale.get("float32")
        if divisor is None:
            raise SncaError(
                f"the model has no input_scale for {dtype.name} rasters "
                f"(it knows {', '.join(metadata.input_scale)}); use --stretch percentile"
            )
        clips = not (dtype.kind == "u" and float(divisor) >= np.iinfo(dtype).max)
        return None, float(divisor) * ones, clips

    def _percentiles(self) -> tuple[np.ndarray, np.ndarray]:
        """2nd and 98th percentile per band over the valid pixels of up to 64 spread tiles."""
        every = max(1, math.ceil(self.tile_count / STRETCH_SAMPLE_TILES))
        samples = []
        for tile_id in range(0, self.tile_count, every):
            clipped = self._clipped(self.tile(tile_id // self.n_cols, tile_id % self.n_cols))
            if clipped is None:
                continue
            window = clipped[0]
            raw = self._guarded(self._dataset.read, self._band_list, window=window)
            valid = self._valid_in(window, raw)
            values = raw.reshape(len(self.bands), -1) if valid is None else raw[:, valid]
            if values.size:
                samples.append(values.astype(np.float64))
        if not samples:
            raise SncaError(f"raster {self.path.name} has no valid pixels to stretch")
        values = np.concatenate(samples, axis=1)
        low, high = np.percentile(values, STRETCH_PERCENTILES, axis=1)
        return low.astype(np.float32), high.astype(np.float32)


def _fill_invalid(pixels: np.ndarray, valid: np.ndarray) -> None:
    """Give the invalid pixels of a tile (bands x T x T) each band's mean valid value (0 when
    no pixel is valid)."""
    if valid.any():
        means = pixels[:, valid].mean(axis=1, dtype=np.float64)
        pixels[:, ~valid] = means[:, None].astype(np.float32)
    else:
        pixels[...] = 0.0


def _validity_source(
    dataset: rasterio.io.DatasetReader | WarpedVRT, bands: tuple[int, ...]
) -> tuple[str, np.ndarray | None]:
    """How pixel validity is found for ``bands``, and the no-data values (bands x 1 x 1) when
    it is a plain integer no-data value (then compared with the pixels, no mask read)."""
    flags = [dataset.mask_flag_enums[band - 1] for band in bands]
    if all(f == [MaskFlags.all_valid] for f in flags):
        return VALIDITY_ALL, None
    dtypes = {dataset.dtypes[band - 1] for band in bands}
    nodata = [dataset.nodatavals[band - 1] for band in bands]
    if len(dtypes) == 1 and all(f == [MaskFlags.nodata] for f in flags):
        dtype = np.dtype(dtypes.pop())
        if dtype.kind in "iu" and all(_representable(value, dtype) for value in nodata):
            return VALIDITY_NODATA, np.array(nodata, dtype=dtype).reshape(-1, 1, 1)
    return VALIDITY_MASK, None


def _representable(value: float | None, dtype: np.dtype) -> bool:
    """Whether ``value`` is exactly a value of the integer ``dtype``."""
    if value is None or not float(value).is_integer():
        return False
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_source(
    path: Path, source: rasterio.io.DatasetReader, metadata: ModelMetadata, options: TilingOptions
) -> tuple[int, ...]:
    """Check georeferencing and bands; return the bands to read."""
    if source.crs is None:
        raise SncaError(
            f"raster {path.name} has no CRS; georeference it first (e.g. gdal_edit.py -a_srs)"
        )
    transform = source.transform
    if transform == Affine.identity():
        raise SncaError(f"raster {path.name} has no geotransform; georeference it first")
    if transform.b != 0 or transform.d != 0:
        raise SncaError(f"raster {path.name} is rotated; warp it north-up first (gdalwarp)")
    bands = options.bands or tuple(range(1, metadata.input_bands + 1))
    if len(bands) != metadata.input_bands:
        raise SncaError(
            f"the model takes {metadata.input_bands} band(s); --bands chose {len(bands)}"
        )
    if max(bands) > source.count:
        hint = "" if options.bands else " (choose bands with --bands)"
        raise SncaError(
            f"raster {path.name} has {source.count} band(s); the model takes "
            f"{metadata.input_bands}, reading bands {', '.join(map(str, bands))}{hint}"
        )
    return tuple(bands)


def _target_resolution_m(metadata: ModelMetadata, options: TilingOptions) -> float | None:
    """Metres per pixel to resample to, or None to keep the raster's grid."""
    if options.resolution == "native":
        return None
    if options.resolution == "auto":
        return metadata.resolution_m
    return float(options.resolution)


def resolution_in_crs_units(
    crs: rasterio.crs.CRS, metres: float, centre_latitude: float
) -> tuple[float, float]:
    """``metres`` as x and y pixel sizes in the units of ``crs``.

    Projected CRS: divided by the CRS's linear unit in metres. Geographic CRS: degrees of
    longitude and latitude at ``centre_latitude`` (WGS84 ellipsoid).
    """
    if crs.is_geographic:
        per_lon, per_lat = metres_per_degree(centre_latitude)
        return metres / per_lon, metres / per_lat
    _, unit_metres = crs.linear_units_factor
    return metres / unit_metres, metres / unit_metres


def _resampled(
    source: rasterio.io.DatasetReader, target_m: float | None
) -> rasterio.io.DatasetReader | WarpedVRT:
    """The source itself, or a WarpedVRT of it at ``target_m`` metres per pixel in its CRS."""
    if target_m is None:
        return source
    left, bottom, right, top = source.bounds
    res_x, res_y = resolution_in_crs_units(source.crs, target_m, (bottom + top) / 2.0)
    native_x, native_y = source.res
    if (
        abs(native_x - res_x) <= RESOLUTION_TOLERANCE * res_x
        and abs(native_y - res_y) <= RESOLUTION_TOLERANCE * res_y
    ):
        return source
    width = max(1, round((right - left) / res_x))
    height = max(1, round((top - bottom) / res_y))
    coarser = res_x > native_x
    options = {}
    if source.nodata is None and rasterio.enums.ColorInterp.alpha not in source.colorinterp:
        # without it the VRT drops a mask band and calls pixels outside the source valid;
        # a no-data value or an alpha band carries over by itself
        options["add_alpha"] = True
    return WarpedVRT(
        source,
        crs=source.crs,
        transform=Affine(res_x, 0.0, left, 0.0, -res_y, top),
        width=width,
        height=height,
        resampling=Resampling.average if coarser else Resampling.bilinear,
        **options,
    )
