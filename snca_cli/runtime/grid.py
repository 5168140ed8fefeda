"""The tile grid of a raster: pure geometry, from a transform and a size (no raster opened).

Built from an open raster (:class:`snca_cli.runtime.raster_tiles.RasterTiling`) or from an index
manifest (:mod:`snca_cli.tasks.index.search`), so locating the tile under a point, a tile's
window and bounds, and which pixels a tile owns are computed one way everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from affine import Affine

from snca_cli.contract.tiling import TilingOptions


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


def apply_affine(transform: Affine, x: float, y: float) -> tuple[float, float]:
    """``transform`` applied to the point ``(x, y)``, from its coefficients: the same on affine 2
    (no ``@``) and affine 3 (``*`` deprecated), so QGIS's Python may hold either."""
    a, b, c, d, e, f = transform[:6]
    return a * x + b * y + c, d * x + e * y + f


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


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``tile_size`` every ``stride`` pixels over a ``width`` x ``height`` pixel grid.

    Attributes:
        transform: the grid's affine transform (pixel -> CRS coordinates).
        width, height: the grid's size in pixels.
        tile_size: tile edge in grid pixels; ``stride`` the distance between tiles.
        edge: ``shift`` or ``pad`` (see :mod:`snca_cli.contract.tiling`).
    """

    transform: Affine
    width: int
    height: int
    tile_size: int
    stride: int
    edge: str
    col_offsets: np.ndarray = field(init=False, repr=False, compare=False)
    row_offsets: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cols = tile_offsets(self.width, self.tile_size, self.stride, self.edge)
        rows = tile_offsets(self.height, self.tile_size, self.stride, self.edge)
        cols.setflags(write=False)
        rows.setflags(write=False)
        object.__setattr__(self, "col_offsets", cols)
        object.__setattr__(self, "row_offsets", rows)

    @classmethod
    def for_options(
        cls, transform: Affine, width: int, height: int, tile_size: int, options: TilingOptions
    ) -> TileGrid:
        """The grid that resolved tiling ``options`` give for tiles of ``tile_size``."""
        stride = tile_size - options.overlap_pixels(tile_size)
        return cls(Affine(*transform[:6]), width, height, tile_size, stride, options.edge)

    @property
    def n_rows(self) -> int:
        return len(self.row_offsets)

    @property
    def n_cols(self) -> int:
        return len(self.col_offsets)

    @property
    def tile_count(self) -> int:
        """Number of tiles in the grid."""
        return self.n_rows * self.n_cols

    @property
    def pixel_area(self) -> float:
        """Area of one grid pixel in CRS units squared."""
        return abs(self.transform.a * self.transform.e)

    def tile(self, row: int, col: int) -> Tile:
        """The tile at ``(row, col)`` of the grid (valid fraction not yet known)."""
        if not (0 <= row < self.n_rows and 0 <= col < self.n_cols):
            raise IndexError(f"tile ({row}, {col}) outside the {self.n_rows} x {self.n_cols} grid")
        col_off, row_off = int(self.col_offsets[col]), int(self.row_offsets[row])
        window = (col_off, row_off, self.tile_size, self.tile_size)
        x0, y0 = apply_affine(self.transform, col_off, row_off + self.tile_size)
        x1, y1 = apply_affine(self.transform, col_off + self.tile_size, row_off)
        bounds = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        return Tile(row * self.n_cols + col, row, col, window, tuple(float(v) for v in bounds))

    def tiles(self) -> Iterator[Tile]:
        """Every tile of the grid, row by row."""
        for row in range(self.n_rows):
            for col in range(self.n_cols):
                yield self.tile(row, col)

    def tile_at(self, x: float, y: float) -> Tile | None:
        """The tile holding the point ``(x, y)`` (grid CRS), or None outside the grid.

        With overlap several tiles hold a point; the one whose centre is nearest wins.
        """
        col_f, row_f = apply_affine(~self.transform, x, y)
        if not (0 <= col_f < self.width and 0 <= row_f < self.height):
            return None
        col = int(nearest_tiles(self.col_offsets, self.tile_size, np.array([col_f]))[0])
        row = int(nearest_tiles(self.row_offsets, self.tile_size, np.array([row_f]))[0])
        return self.tile(row, col)

    def pixel_owners(self) -> tuple[np.ndarray, np.ndarray]:
        """For each grid column and row, the tile column and row owning it (nearest centre)."""
        cols = nearest_tiles(self.col_offsets, self.tile_size, np.arange(self.width) + 0.5)
        rows = nearest_tiles(self.row_offsets, self.tile_size, np.arange(self.height) + 0.5)
        return cols, rows

    def owned_pixels(self) -> np.ndarray:
        """Pixels of the grid each tile owns (nearest tile centre), as an n_rows x n_cols array.

        Every pixel of the grid is owned by exactly one tile, so these counts sum to
        ``width * height`` however much tiles overlap: the basis of per-class areas.
        """
        cols, rows = self.pixel_owners()
        return np.outer(
            np.bincount(rows, minlength=self.n_rows), np.bincount(cols, minlength=self.n_cols)
        )
