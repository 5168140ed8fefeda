"""An opened raster and its tile grid: read tiles as model input with windowed I/O.

The tiling grid (:class:`snca_cli.runtime.grid.TileGrid`) is the raster's own pixel grid, or,
when the model's ground resolution differs from the raster's, a grid in the raster's own CRS at
the target resolution read through a WarpedVRT (:mod:`snca_cli.runtime.georef`). Every read is
one tile-sized window, so memory does not grow with the size of the raster; GDAL's block cache is
capped meanwhile (:mod:`snca_cli.runtime.block_cache`). Options and their defaults:
:mod:`snca_cli.contract.tiling`; value scaling: :mod:`snca_cli.contract.scaling`.

* **No-data**: a pixel is valid when every selected band is valid in the raster's mask (no-data
  value, alpha band or mask band) and, for a float raster, finite (NaN and infinities are
  no-data whether the raster declares a no-data value or not). Tiles with a valid fraction
  below ``min_valid`` are skipped; in the tiles kept, invalid pixels are filled with the tile's
  mean valid value per band, so they never reach the model as real values.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from snca_cli.contract.metadata import ModelMetadata
from snca_cli.contract.scaling import (
    STRETCH_SAMPLE_TILES,
    ValueScaling,
    carries_gdal_scale,
    choose_scaling,
    needs_sample,
)
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError, check_utf8_path, first_line
from snca_cli.runtime.block_cache import block_cache_bytes, bounded_block_cache
from snca_cli.runtime.georef import (
    dataset_resolution_warning,
    resampled_view,
    target_resolution_m,
)
from snca_cli.runtime.grid import Tile, TileGrid
from snca_cli.runtime.paths import gdal_path, is_remote
from snca_cli.runtime.raster_identity import content_identity

#: How pixel validity is found: every pixel valid (no no-data value, mask or alpha band), a
#: plain integer no-data value compared with the pixels read, or the raster's mask bands.
VALIDITY_ALL, VALIDITY_NODATA, VALIDITY_MASK = "all", "nodata", "mask"


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
        grid: the :class:`TileGrid` (tile windows, bounds, the tile under a point).
        bands: the 1-based raster bands read, in order.
        options: the tiling options, filled in for the model (:meth:`TilingOptions.for_model`).
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
        scaling: ValueScaling | None = None,
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
        self.bands = bands
        if self.width < self.tile_size or self.height < self.tile_size:
            scale = " after resampling" if self.resampled else ""
            raise SncaError(
                f"raster {path.name} is {self.width} x {self.height} px{scale}, smaller than one "
                f"{self.tile_size} x {self.tile_size} px tile of the model"
            )
        self.grid = TileGrid.for_options(
            self.transform, self.width, self.height, self.tile_size, options
        )
        self.stride = self.grid.stride
        self.n_rows = self.grid.n_rows
        self.n_cols = self.grid.n_cols
        self._band_list = list(bands)
        self._validity, self._nodata = _validity_source(dataset, bands)
        #: how raw values become model input: the one given, else chosen now (the ``auto`` and
        #: ``percentile`` stretches sample the raster); SncaError when the model cannot take them
        self.scaling = scaling if scaling is not None else self._scaling(metadata)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        metadata: ModelMetadata,
        options: TilingOptions | None = None,
        scaling: ValueScaling | None = None,
    ) -> RasterTiling:
        """Open ``path`` and build its tile grid for a model; raise SncaError on bad input.

        Refuses a missing or unreadable file, a raster without CRS or georeferencing, a rotated
        raster, band choices the model cannot take and a raster smaller than one tile.
        ``scaling``: the value scaling an earlier opening of the same raster with the same
        options chose (:attr:`scaling`), so that it is not sampled again.
        """
        options = (options or TilingOptions()).for_model(metadata)
        options.check()
        name = gdal_path(path)  # what GDAL opens: a local file, /vsi... or a URL as typed
        path = Path(path)
        check_utf8_path(path, "raster")
        if not is_remote(name):
            if not path.exists():
                raise SncaError(f"raster {path} does not exist")
            if path.is_dir():
                raise SncaError(f"raster {path} is a folder, not a raster file")
        resources = contextlib.ExitStack()
        try:
            try:
                source = resources.enter_context(rasterio.open(name))
            except RasterioError as exc:
                raise SncaError(
                    f"{name} is not a raster GDAL can read: {first_line(exc)}"
                ) from None
            bands = _check_source(path, source, metadata, options)
            dataset = resampled_view(source, target_resolution_m(metadata, options))
            if dataset is not source:
                resources.enter_context(dataset)
            tile_rows = math.ceil(metadata.tile_size * dataset.res[1] / source.res[1])
            resources.enter_context(bounded_block_cache(block_cache_bytes(source, tile_rows)))
            return cls(path, source, dataset, metadata, options, bands, resources, scaling)
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
        return self.grid.tile_count

    def tile(self, row: int, col: int) -> Tile:
        """The tile at ``(row, col)`` of the grid (valid fraction not yet known)."""
        return self.grid.tile(row, col)

    def tiles(self) -> Iterator[Tile]:
        """Every tile of the grid, row by row."""
        return self.grid.tiles()

    def tile_at(self, x: float, y: float) -> Tile | None:
        """The tile holding the point ``(x, y)`` (raster CRS), or None outside the raster."""
        return self.grid.tile_at(x, y)

    def resolution_warning(self, metadata: ModelMetadata) -> str | None:
        """The warning when the pixels the model sees are far from its training resolutions
        (:func:`snca_cli.runtime.georef.raster_resolution_warning`), else None."""
        return dataset_resolution_warning(self._source, metadata, self.options)

    def content_identity(self) -> str:
        """A hash of what the raster holds
        (:func:`snca_cli.runtime.raster_identity.content_identity`)."""
        return content_identity(self._source)

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
            valid = _and_finite(raw, valid)
        else:
            raw = self._guarded(self._dataset.read, self._band_list, window=window)
            valid = _and_finite(raw, self._valid_in(window, raw))
        count = raw.shape[1] * raw.shape[2] if valid is None else np.count_nonzero(valid)
        fraction = count / area
        if not (keep_all or self._keeps(fraction)):
            return fraction, False
        whole = raw.shape[1:] == (self.tile_size, self.tile_size)
        self.scaling.apply(raw, out if whole else out[:, target[0], target[1]])
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
            detail = first_line(exc.__cause__ or exc)
            raise SncaError(
                f"cannot read {self.path.name} (corrupt or truncated?): {detail}"
            ) from None

    # -- scaling -------------------------------------------------------------------------

    def _scaling(self, metadata: ModelMetadata) -> ValueScaling:
        """The raster's value scaling, chosen once by :func:`choose_scaling` from a sample of
        the raster (taken only when the stretch looks at one)."""
        stretch = self.options.stretch
        sample = self._stretch_sample() if needs_sample(stretch) else None
        return choose_scaling(
            stretch,
            sample,
            self._dataset.dtypes[self.bands[0] - 1],
            metadata.input_scale,
            len(self.bands),
            gdal_scaled=carries_gdal_scale(
                [self._source.scales[band - 1] for band in self.bands],
                [self._source.offsets[band - 1] for band in self.bands],
            ),
            source=f"raster {self.path.name}",
        )

    def _stretch_sample(self) -> np.ndarray | None:
        """The valid pixels (bands x N) of up to STRETCH_SAMPLE_TILES tiles spread over the
        grid; None when none is valid."""
        every = max(1, math.ceil(self.tile_count / STRETCH_SAMPLE_TILES))
        samples = []
        for tile_id in range(0, self.tile_count, every):
            clipped = self._clipped(self.tile(tile_id // self.n_cols, tile_id % self.n_cols))
            if clipped is None:
                continue
            window = clipped[0]
            raw = self._guarded(self._dataset.read, self._band_list, window=window)
            valid = _and_finite(raw, self._valid_in(window, raw))
            values = raw.reshape(len(self.bands), -1) if valid is None else raw[:, valid]
            if values.size:
                samples.append(values.astype(np.float64))
        return np.concatenate(samples, axis=1) if samples else None


def _and_finite(raw: np.ndarray, valid: np.ndarray | None) -> np.ndarray | None:
    """``valid`` (None: every pixel) narrowed to the pixels finite in every band: NaN and
    infinite values of a float raster count as no-data, declared or not."""
    if raw.dtype.kind not in "fc":
        return valid
    finite = np.isfinite(raw).all(axis=0)
    if finite.all():
        return valid
    return finite if valid is None else valid & finite


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
