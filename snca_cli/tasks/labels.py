"""Labels drawn on the map, turned into labelled tiles of a raster's tiling grid.

A label layer (GeoPackage, GeoJSON, Shapefile; any CRS, reprojected to each raster's) holds
points or polygons with a class field. Over a raster cut into tiles as ``snca classify`` cuts
it (:class:`snca_cli.runtime.raster_tiles.RasterTiling`):

* a **point** labels the tile under it (the tile whose centre is nearest, as a click on the
  map picks a tile);
* a **polygon** labels every tile whose area is at least :data:`POLYGON_COVER` inside it.

A tile labelled with two different classes is ambiguous and dropped (counted in
:attr:`TileLabels.conflicts`); the same tile labelled twice with one class counts once. What
kept labels from tiles (outside every raster, polygons under half of every tile they touch,
tiles of two classes) is reported as it is: a warning, or the error when no tile is left.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_geom

from snca_cli.contract.metadata import ModelMetadata, check_name
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError, first_line
from snca_cli.runtime.grid import Tile
from snca_cli.runtime.raster_tiles import RasterTiling

#: A polygon labels a tile when at least this fraction of the tile's area lies inside it.
POLYGON_COVER = 0.5
#: Suffixes of the label formats read.
LABEL_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp")


@dataclass
class LabelSet:
    """The labelled geometries of a layer: shapely geometries in ``crs`` and their classes."""

    path: Path
    field: str
    crs: CRS
    geometries: list[shapely.Geometry]
    classes: list[str]

    @property
    def class_names(self) -> list[str]:
        """The distinct classes, sorted."""
        return sorted(set(self.classes))


@dataclass(frozen=True)
class LabelledTile:
    """A tile of ``raster``'s tiling grid and the class a label gave it."""

    raster: Path
    tile: Tile
    class_name: str


@dataclass
class TileLabels:
    """The labelled tiles of one raster, and what could not be used."""

    tiles: list[LabelledTile] = field(default_factory=list)
    #: Per label of the layer, the largest fraction of one tile it covers: 1 for a point on a
    #: tile, 0 for a label outside the raster; a polygon labels tiles from POLYGON_COVER.
    cover: list[float] = field(default_factory=list)
    conflicts: int = 0  # tiles labelled with two classes (dropped)

    @property
    def outside(self) -> int:
        """Labels that touch no tile of the raster."""
        return sum(1 for fraction in self.cover if fraction == 0)


def read_labels(path: Path | str, field_name: str) -> LabelSet:
    """Read the points and polygons of a label layer and their ``field_name`` values.

    Raise SncaError for a missing or unreadable file, a layer without CRS, a missing field
    (the fields there are listed), other geometry types, a class value longer than a model's
    class names may be, or no labelled feature at all.
    Features with an empty class or no geometry are skipped.
    """
    path = Path(path)
    if not path.exists():
        raise SncaError(f"label file {path} does not exist")
    try:
        meta, _, wkb, values = pyogrio.raw.read(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio's and GDAL's errors have many classes
        raise SncaError(f"{path} is not a vector layer GDAL can read: {first_line(exc)}") from None
    fields = [str(name) for name in meta["fields"]]
    if field_name not in fields:
        raise SncaError(
            f"{path.name} has no field {field_name!r} (fields: {', '.join(fields) or 'none'})"
        )
    if not meta["crs"]:
        raise SncaError(f"{path.name} has no CRS: save the labels with one")
    try:
        crs = CRS.from_user_input(meta["crs"])
    except CRSError as exc:
        raise SncaError(f"{path.name} has a CRS GDAL does not know: {exc}") from None
    column = values[fields.index(field_name)]
    geometries, classes = [], []
    for blob, value in zip(wkb, column, strict=True):
        name = "" if value is None else str(value).strip()
        if blob is None or not name or name.lower() == "nan":
            continue
        geometry = shapely.from_wkb(blob)
        if geometry.is_empty:
            continue
        if geometry.geom_type not in ("Point", "MultiPoint", "Polygon", "MultiPolygon"):
            raise SncaError(
                f"{path.name}: labels must be points or polygons, not {geometry.geom_type}"
            )
        check_name(name, f"{path.name}: class value")  # it becomes a model's class name
        geometries.append(geometry)
        classes.append(name)
    if not geometries:
        raise SncaError(f"{path.name} has no feature with a class in field {field_name!r}")
    return LabelSet(path, field_name, crs, geometries, classes)


def _in_crs(geometry: shapely.Geometry, source: CRS, target: CRS) -> shapely.Geometry:
    if source == target:
        return geometry
    return shapely.geometry.shape(
        transform_geom(source, target, shapely.geometry.mapping(geometry))
    )


def _covered_tiles(polygon: shapely.Geometry, tiling: RasterTiling) -> tuple[list[Tile], float]:
    """The tiles with at least :data:`POLYGON_COVER` of their area inside ``polygon``, and the
    largest fraction of a tile inside it."""
    minx, miny, maxx, maxy = polygon.bounds
    found, largest = [], 0.0
    for tile in tiling.tiles():
        tminx, tminy, tmaxx, tmaxy = tile.bounds
        if tmaxx <= minx or tminx >= maxx or tmaxy <= miny or tminy >= maxy:
            continue
        cell = shapely.box(*tile.bounds)
        fraction = polygon.intersection(cell).area / cell.area
        largest = max(largest, fraction)
        if fraction >= POLYGON_COVER:
            found.append(tile)
    return found, largest


def label_tiles(labels: LabelSet, tiling: RasterTiling) -> TileLabels:
    """The tiles of ``tiling`` the labels name (see the module docstring for the rules)."""
    by_tile: dict[int, set[str]] = {}
    tiles: dict[int, Tile] = {}
    cover = []
    for geometry, name in zip(labels.geometries, labels.classes, strict=True):
        try:
            local = _in_crs(geometry, labels.crs, tiling.crs)
        except Exception:  # noqa: BLE001 - PROJ cannot place it in the raster's CRS
            cover.append(0.0)
            continue
        if local.geom_type in ("Point", "MultiPoint"):
            points = local.geoms if local.geom_type == "MultiPoint" else [local]
            hit = [tiling.tile_at(p.x, p.y) for p in points]
            hit = [t for t in hit if t is not None]
            cover.append(1.0 if hit else 0.0)
        else:
            hit, largest = _covered_tiles(shapely.make_valid(local), tiling)
            cover.append(largest)
        for tile in hit:
            tiles[tile.tile_id] = tile
            by_tile.setdefault(tile.tile_id, set()).add(name)
    result = TileLabels(cover=cover)
    for tile_id in sorted(by_tile):
        names = by_tile[tile_id]
        if len(names) > 1:
            result.conflicts += 1
            continue
        result.tiles.append(LabelledTile(tiling.path, tiles[tile_id], next(iter(names))))
    return result


def label_rasters(
    labels: LabelSet, rasters: list[Path], metadata: ModelMetadata, options: TilingOptions
) -> tuple[list[LabelledTile], list[str]]:
    """The labelled tiles of every raster, cut for a model as ``snca classify`` cuts them, and
    warnings (labels outside every raster, polygons under half of every tile, tiles with two
    classes); SncaError saying which of these left no labelled tile."""
    tiles: list[LabelledTile] = []
    cover = np.zeros(len(labels.geometries))
    conflicts = 0
    for raster in rasters:
        with RasterTiling.open(raster, metadata, options) as tiling:
            found = label_tiles(labels, tiling)
        tiles.extend(found.tiles)
        cover = np.maximum(cover, found.cover)
        conflicts += found.conflicts
    warnings = _unused_labels(cover, conflicts)
    if not tiles and not cover.any():
        raise SncaError(
            f"no label of {labels.path.name} falls on a tile of the {len(rasters)} "
            "raster(s): check that labels and rasters cover the same place"
        )
    if not tiles:
        raise SncaError(
            f"no tile is left labelled by {labels.path.name} on the {len(rasters)} raster(s): "
            + "; ".join(warnings)
        )
    return tiles, warnings


def _unused_labels(cover: np.ndarray, conflicts: int) -> list[str]:
    """What kept labels from tiles, a line each: labels outside every raster (``cover``, per
    label the largest fraction of a tile it covers, is 0), polygons under
    :data:`POLYGON_COVER` of every tile, tiles labelled with two classes."""
    lines = []
    outside = int((cover == 0).sum())
    if outside:
        lines.append(f"{outside} label(s) fall outside every raster (ignored)")
    small = cover[(cover > 0) & (cover < POLYGON_COVER)]
    if small.size:
        largest = math.floor(1000 * small.max()) / 10  # never rounded up to 50 %
        lines.append(
            f"{small.size} polygon(s) cover less than half of any tile (ignored; the largest "
            f"covers {largest:.1f} % of a tile, and a polygon labels the tiles at least half "
            "inside it)"
        )
    if conflicts:
        lines.append(f"{conflicts} tile(s) labelled with two classes (dropped)")
    return lines


def class_counts(tiles: list[LabelledTile]) -> dict[str, int]:
    """Labelled tiles per class, classes sorted by name."""
    counts = Counter(t.class_name for t in tiles)
    return {name: counts[name] for name in sorted(counts)}


def check_classes(counts: dict[str, int], source: str) -> list[str]:
    """Raise SncaError unless at least two classes have tiles; return warnings for classes
    with a single example (too few to check the head on)."""
    if len(counts) < 2:
        only = f" (only {next(iter(counts))!r})" if counts else ""
        raise SncaError(f"{source}: need labelled tiles of at least two classes{only}")
    return [
        f"class {name!r} has a single labelled tile: add more for a reliable head"
        for name, count in counts.items()
        if count == 1
    ]


def labelled_array(tiles: list[LabelledTile], class_names: list[str]) -> np.ndarray:
    """Class indices (into ``class_names``) of labelled tiles."""
    index = {name: i for i, name in enumerate(class_names)}
    return np.array([index[t.class_name] for t in tiles], dtype=np.int64)
