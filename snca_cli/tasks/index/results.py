"""What a search returns: the query tile, the hits ranked by similarity, and how they are written.

``SearchResult.write("similar.gpkg")`` writes layer ``similar_tiles`` (and ``query``) plus a sibling
``similar.geojson`` in EPSG:4326; hits from rasters in other CRSs are reprojected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import atomic_outputs, check_output_paths
from snca_cli.runtime.paths import gdal_path
from snca_cli.runtime.vector import box_rings, reproject_rings, write_geojson_wgs84, write_polygons
from snca_cli.tasks.output_names import geojson_beside

WGS84 = "EPSG:4326"


@dataclass(frozen=True)
class IndexedTile:
    """A tile of the index.

    Attributes:
        tile_id: its id in the index.
        raster: the raster file it was cut from.
        crs: the raster's CRS (``bounds`` are in it).
        window: ``(col_off, row_off, width, height)`` in pixels of the raster's tiling grid.
        bounds: ``(minx, miny, maxx, maxy)``.
        class_name: the class the model predicted for it, and ``score`` its probability.
    """

    tile_id: int
    raster: Path
    crs: CRS
    window: tuple[int, int, int, int]
    bounds: tuple[float, float, float, float]
    class_name: str
    score: float


@dataclass(frozen=True)
class Hit:
    """One similar tile: ``rank`` 1 is the most similar; ``similarity`` is a cosine."""

    rank: int
    similarity: float
    tile: IndexedTile


@dataclass
class SearchResult:
    """The query (``None`` for an image) and its hits, most similar first."""

    query: IndexedTile | None
    query_label: str
    hits: list[Hit]
    class_filter: str | None
    backend: str  # "hnswlib" or "exact"
    seconds: float

    def write(self, path: Path | str, force: bool = False) -> list[Path]:
        """Write the hits as polygons; return the files written.

        ``.gpkg``: layer ``similar_tiles`` (and ``query`` with the query tile's footprint) in
        the query's CRS (or the first hit's), plus a sibling ``.geojson`` in EPSG:4326.
        ``.geojson``: the EPSG:4326 layer only. Hits from rasters in other CRSs are reprojected.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        outputs = result_paths(path, force)
        geojson = geojson_beside(path)
        first = self.query or (self.hits[0].tile if self.hits else None)
        crs = first.crs if first is not None else CRS.from_user_input(WGS84)
        rings = _rings_in(crs, [hit.tile for hit in self.hits])
        attributes = {
            "rank": np.array([h.rank for h in self.hits], dtype=np.int32),
            "tile_id": np.array([h.tile.tile_id for h in self.hits], dtype=np.int64),
            "similarity": np.array([h.similarity for h in self.hits], dtype=np.float64),
            "class": np.array([h.tile.class_name for h in self.hits], dtype=object),
            "score": np.array([h.tile.score for h in self.hits], dtype=np.float64),
            "raster": np.array([gdal_path(h.tile.raster) for h in self.hits], dtype=object),
            **{
                name: np.array([h.tile.window[i] for h in self.hits], dtype=np.int64)
                for i, name in enumerate(("col_off", "row_off", "width", "height"))
            },
            "query": np.array([self.query_label] * len(self.hits), dtype=object),
        }
        with atomic_outputs(outputs, force) as staged:
            write_geojson_wgs84(
                staged.path(geojson), rings, attributes, crs, layer="similar_tiles"
            )
            if suffix == ".gpkg":
                tmp = staged.path(path)
                write_polygons(tmp, rings, attributes, crs, layer="similar_tiles")
                if self.query is not None:
                    query_attributes = {
                        "tile_id": np.array([self.query.tile_id], dtype=np.int64),
                        "class": np.array([self.query.class_name], dtype=object),
                        "score": np.array([self.query.score], dtype=np.float64),
                        "raster": np.array([gdal_path(self.query.raster)], dtype=object),
                    }
                    query_rings = _rings_in(crs, [self.query])
                    write_polygons(tmp, query_rings, query_attributes, crs, layer="query")
        return outputs


def result_paths(path: Path | str, force: bool = False) -> list[Path]:
    """The files :meth:`SearchResult.write` makes for ``path``, checked (before any work): a
    ``.gpkg`` and the ``.geojson`` beside it, or a ``.geojson`` alone."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gpkg", ".geojson"):
        raise SncaError(f"cannot write results to {path.name}: use .gpkg or .geojson")
    geojson = geojson_beside(path)
    return check_output_paths([path, geojson] if suffix == ".gpkg" else [geojson], force)


def _rings_in(crs: CRS, tiles: list[IndexedTile]) -> np.ndarray:
    """The tiles' footprints as closed rings in ``crs``."""
    rings = box_rings(np.array([t.bounds for t in tiles], dtype=np.float64).reshape(-1, 4))
    for i, tile in enumerate(tiles):
        if tile.crs != crs:
            rings[i] = reproject_rings(rings[i : i + 1], tile.crs, crs)[0]
    return rings
