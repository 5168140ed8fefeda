"""What a search returns: the query tiles, the hits ranked by similarity, and how they are written.

A tile is named as ``snca classify`` names it: its ``tile_id`` in its raster's tiling grid
(``row * n_cols + col``) together with the raster; the same id is in the classify GeoPackage, the
index's tile table, the search results and the plugin's layers.

``SearchResult.write("similar.gpkg")`` writes layer ``similar_tiles`` (and ``query``: the
example tiles, ``example`` = ``positive`` or ``negative``) plus a sibling ``similar.geojson`` in
EPSG:4326 (an existing one is replaced only when snca wrote it: :data:`SEARCH_METADATA`); hits
from rasters in other CRSs are reprojected. Each layer of the GeoPackage carries
the plugin's look as its default QGIS style (:mod:`snca_cli.runtime.styles`): the similarity
ramp with ``#rank`` labels, and the query tiles as outlines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import OwnOutput, atomic_outputs, check_output_paths
from snca_cli.runtime.paths import gdal_path
from snca_cli.runtime.style_files import LayerStyle, write_layer_styles
from snca_cli.runtime.styles import query_tiles_qml, similar_tiles_qml
from snca_cli.runtime.vector import (
    GEOJSON_MARKER,
    GEOJSON_OUTPUT,
    box_rings,
    reproject_rings,
    write_geojson_wgs84,
    write_polygons,
)
from snca_cli.tasks.output_names import geojson_beside

WGS84 = "EPSG:4326"
#: The GeoJSON description's prefix of search results (:data:`GEOJSON_MARKER` ``search``).
SEARCH_METADATA = f"{GEOJSON_MARKER}search"


@dataclass(frozen=True)
class IndexedTile:
    """A tile of the index.

    Attributes:
        tile_id: its id in its raster's tiling grid, ``row * n_cols + col`` (as in the
            classify outputs); with ``raster`` it names the tile.
        row, col: its position in that grid.
        index_row: its row in the index's tile table and embeddings (0 .. count - 1).
        raster: the raster file it was cut from.
        crs: the raster's CRS (``bounds`` are in it).
        window: ``(col_off, row_off, width, height)`` in pixels of the raster's tiling grid.
        bounds: ``(minx, miny, maxx, maxy)``.
        class_name: the class the model predicted for it, and ``score`` its probability.
    """

    tile_id: int
    row: int
    col: int
    index_row: int
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
    """The query's example tiles and the hits, most similar first.

    ``positives`` are the tiles searched like (one for a tile or point query, none for an
    image), ``negatives`` the tiles searched unlike; ``similarity`` of a hit is the ranking
    score of :meth:`~snca_cli.tasks.index.search.TileIndex.search_examples` (the cosine when
    there is one positive and no negative).
    """

    positives: list[IndexedTile]
    negatives: list[IndexedTile]
    query_label: str
    hits: list[Hit]
    class_filter: str | None
    backend: str  # "hnswlib" or "exact"
    seconds: float

    @property
    def query(self) -> IndexedTile | None:
        """The first positive example tile (the query tile of a one-tile search)."""
        return self.positives[0] if self.positives else None

    def write(self, path: Path | str, force: bool = False) -> list[Path]:
        """Write the hits as polygons; return the files written.

        ``.gpkg``: layer ``similar_tiles`` (and ``query`` with the query tile's footprint) in
        the query's CRS (or the first hit's), each with its default QGIS style, plus a sibling
        ``.geojson`` in EPSG:4326.
        ``.geojson``: the EPSG:4326 layer only. Hits from rasters in other CRSs are reprojected.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        outputs, own = result_outputs(path)
        geojson = geojson_beside(path)
        examples = self.positives + self.negatives
        first = examples[0] if examples else (self.hits[0].tile if self.hits else None)
        crs = first.crs if first is not None else CRS.from_user_input(WGS84)
        rings = _rings_in(crs, [hit.tile for hit in self.hits])
        attributes = {
            "rank": np.array([h.rank for h in self.hits], dtype=np.int32),
            **tile_attributes([hit.tile for hit in self.hits]),
            "similarity": np.array([h.similarity for h in self.hits], dtype=np.float64),
            **{
                name: np.array([h.tile.window[i] for h in self.hits], dtype=np.int64)
                for i, name in enumerate(("col_off", "row_off", "width", "height"))
            },
            "query": np.array([self.query_label] * len(self.hits), dtype=object),
        }
        with atomic_outputs(outputs, force, own=own) as staged:
            write_geojson_wgs84(
                staged.path(geojson),
                rings,
                attributes,
                crs,
                f"{SEARCH_METADATA}: {json.dumps({'query': self.query_label})}",
                layer="similar_tiles",
            )
            if suffix == ".gpkg":
                tmp = staged.path(path)
                write_polygons(tmp, rings, attributes, crs, layer="similar_tiles")
                styles = [LayerStyle("similar_tiles", similar_tiles_qml(), "snca similarity")]
                if examples:
                    kinds = ["positive"] * len(self.positives) + ["negative"] * len(self.negatives)
                    query_attributes = {
                        "example": np.array(kinds, dtype=object),
                        **tile_attributes(examples),
                    }
                    query_rings = _rings_in(crs, examples)
                    write_polygons(tmp, query_rings, query_attributes, crs, layer="query")
                    styles.append(LayerStyle("query", query_tiles_qml(), "snca query tiles"))
                write_layer_styles(tmp, styles)
        return outputs


def result_outputs(path: Path | str) -> tuple[list[Path], dict[Path, OwnOutput]]:
    """The files :meth:`SearchResult.write` makes for ``path`` (a ``.gpkg`` and the
    ``.geojson`` beside it, or a ``.geojson`` alone) and those of them the user did not name,
    replaced only when snca wrote them (:func:`snca_cli.runtime.atomic.check_replaceable`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gpkg", ".geojson"):
        raise SncaError(f"cannot write results to {path.name}: use .gpkg or .geojson")
    geojson = geojson_beside(path)
    if suffix == ".geojson":
        return [geojson], {}
    return [path, geojson], {geojson: GEOJSON_OUTPUT}


def result_paths(path: Path | str, force: bool = False) -> list[Path]:
    """The files :meth:`SearchResult.write` makes for ``path``, checked (before any work)."""
    outputs, own = result_outputs(path)
    return check_output_paths(outputs, force, own=own)


def tile_attributes(tiles: list[IndexedTile]) -> dict[str, np.ndarray]:
    """The columns that name and describe tiles in every output: ``tile_id``, ``row``,
    ``col`` (the classify grid's), ``raster``, ``class`` and ``score``."""
    return {
        "tile_id": np.array([t.tile_id for t in tiles], dtype=np.int64),
        "row": np.array([t.row for t in tiles], dtype=np.int64),
        "col": np.array([t.col for t in tiles], dtype=np.int64),
        "raster": np.array([gdal_path(t.raster) for t in tiles], dtype=object),
        "class": np.array([t.class_name for t in tiles], dtype=object),
        "score": np.array([t.score for t in tiles], dtype=np.float64),
    }


def _rings_in(crs: CRS, tiles: list[IndexedTile]) -> np.ndarray:
    """The tiles' footprints as closed rings in ``crs``."""
    rings = box_rings(np.array([t.bounds for t in tiles], dtype=np.float64).reshape(-1, 4))
    for i, tile in enumerate(tiles):
        if tile.crs != crs:
            rings[i] = reproject_rings(rings[i : i + 1], tile.crs, crs)[0]
    return rings
