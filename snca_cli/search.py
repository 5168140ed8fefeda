"""Find the tiles of an index most similar to a tile, a point on the map or an image.

Usage (the QGIS plugin and ``snca search`` do just this)::

    index = TileIndex.open("landsat.index")
    result = index.search_lonlat(-77.6, 24.1, k=10, class_filter="forest")
    for hit in result.hits:
        hit.rank, hit.similarity, hit.tile.tile_id, hit.tile.raster, hit.tile.bounds
    result.write(Path("similar.gpkg"))  # + similar.geojson in EPSG:4326

Similarity is the cosine of the two unit embeddings (1 = same direction). The query tile itself
is never among the hits; other tiles identical to it are. With a class filter only tiles
predicted as that class are returned: the nearest-neighbour query is oversampled until ``k``
such tiles come back, or, for a rare class, answered exactly over that class's tiles.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform as transform_coords

from snca_cli.ann import ExactSearch, NeighbourSearch, hnswlib_available, normalize
from snca_cli.atomic import atomic_output, check_writable
from snca_cli.dataset import read_image, resize_image
from snca_cli.errors import SncaError
from snca_cli.index import IndexedRaster, IndexFiles, Manifest, check_model, read_index
from snca_cli.metadata import ModelMetadata
from snca_cli.model import OnnxModel
from snca_cli.tiling import STRETCH_PERCENTILES, TilingOptions, nearest_tiles, tile_offsets
from snca_cli.vector import box_rings, reproject_rings, write_geojson_wgs84, write_polygons

#: How many times more neighbours than needed a class-filtered query asks for at first.
CLASS_OVERSAMPLING = 2.0
#: Largest oversampled approximate query; beyond it the class's tiles are searched exactly.
MAX_OVERSAMPLED_QUERY = 4096

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
        if suffix not in (".gpkg", ".geojson"):
            raise SncaError(f"cannot write results to {path.name}: use .gpkg or .geojson")
        geojson = path.with_suffix(".geojson")
        outputs = [path, geojson] if suffix == ".gpkg" else [geojson]
        for output in outputs:
            check_writable(output, force)
        first = self.query or (self.hits[0].tile if self.hits else None)
        crs = first.crs if first is not None else CRS.from_user_input(WGS84)
        rings = _rings_in(crs, [hit.tile for hit in self.hits])
        attributes = {
            "rank": np.array([h.rank for h in self.hits], dtype=np.int32),
            "tile_id": np.array([h.tile.tile_id for h in self.hits], dtype=np.int64),
            "similarity": np.array([h.similarity for h in self.hits], dtype=np.float64),
            "class": np.array([h.tile.class_name for h in self.hits], dtype=object),
            "score": np.array([h.tile.score for h in self.hits], dtype=np.float64),
            "raster": np.array([str(h.tile.raster) for h in self.hits], dtype=object),
            **{
                name: np.array([h.tile.window[i] for h in self.hits], dtype=np.int64)
                for i, name in enumerate(("col_off", "row_off", "width", "height"))
            },
            "query": np.array([self.query_label] * len(self.hits), dtype=object),
        }
        if suffix == ".gpkg":
            with atomic_output(path, force) as tmp:
                write_polygons(tmp, rings, attributes, crs, layer="similar_tiles")
                if self.query is not None:
                    query_attributes = {
                        "tile_id": np.array([self.query.tile_id], dtype=np.int64),
                        "class": np.array([self.query.class_name], dtype=object),
                        "score": np.array([self.query.score], dtype=np.float64),
                        "raster": np.array([str(self.query.raster)], dtype=object),
                    }
                    query_rings = _rings_in(crs, [self.query])
                    write_polygons(tmp, query_rings, query_attributes, crs, layer="query")
        with atomic_output(geojson, force) as tmp:
            write_geojson_wgs84(tmp, rings, attributes, crs, layer="similar_tiles")
        return outputs


def _rings_in(crs: CRS, tiles: list[IndexedTile]) -> np.ndarray:
    """The tiles' footprints as closed rings in ``crs``."""
    rings = box_rings(np.array([t.bounds for t in tiles], dtype=np.float64).reshape(-1, 4))
    for i, tile in enumerate(tiles):
        if tile.crs != crs:
            rings[i] = reproject_rings(rings[i : i + 1], tile.crs, crs)[0]
    return rings


def _parse_crs(crs: str) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise SncaError(f"unknown CRS {crs!r}: {exc}") from None


@dataclass(frozen=True)
class _RasterGrid:
    """The tile grid of an indexed raster, rebuilt from the manifest to locate points."""

    raster: IndexedRaster
    crs: CRS
    col_offsets: np.ndarray
    row_offsets: np.ndarray
    inverse: Affine  # (x, y) -> (col, row) in grid pixels

    @classmethod
    def of(cls, raster: IndexedRaster, tile_size: int, tiling: TilingOptions) -> _RasterGrid:
        stride = tile_size - tiling.overlap_pixels(tile_size)
        return cls(
            raster=raster,
            crs=raster.crs,
            col_offsets=tile_offsets(raster.width, tile_size, stride, tiling.edge),
            row_offsets=tile_offsets(raster.height, tile_size, stride, tiling.edge),
            inverse=~Affine(*raster.transform),
        )

    def grid_id_at(self, x: float, y: float, tile_size: int) -> int | None:
        """The grid id of the tile holding ``(x, y)`` (raster CRS), None outside the raster.

        With overlap the tile whose centre is nearest wins (as in ``RasterTiling.tile_at``).
        """
        col_f, row_f = self.inverse @ (x, y)
        if not (0 <= col_f < self.raster.width and 0 <= row_f < self.raster.height):
            return None
        col = int(nearest_tiles(self.col_offsets, tile_size, np.array([col_f]))[0])
        row = int(nearest_tiles(self.row_offsets, tile_size, np.array([row_f]))[0])
        return row * len(self.col_offsets) + col


class TileIndex:
    """An open index, ready for repeated searches (a query takes well under a millisecond to
    a few milliseconds with hnswlib; opening reads the manifest and the tile table and maps the
    embeddings).

    Open with :meth:`open`; :meth:`close` (or a ``with`` block) releases the memory-mapped
    embeddings and the graph (on Windows a mapped file blocks ``add_to_index``). Attributes:
    ``directory``, ``manifest``, ``backend`` ("hnswlib" or "exact"), ``class_names``, ``count``.
    Not thread-safe: use one ``TileIndex`` per thread.
    """

    def __init__(self, files: IndexFiles, search: NeighbourSearch) -> None:
        self.directory = files.directory
        self.manifest: Manifest = files.manifest
        self._tiles = files.tiles
        self._embeddings: np.ndarray | None = files.embeddings
        self._search: NeighbourSearch | None = search
        self._members: dict[int, np.ndarray] = {}
        self._grids = [
            _RasterGrid.of(r, self.manifest.tile_size, self.manifest.tiling)
            for r in self.manifest.rasters
        ]
        self._raster_paths = [r.resolve(self.directory) for r in self.manifest.rasters]

    @classmethod
    def open(cls, index_dir: Path | str, exact: bool = False) -> TileIndex:
        """Open and check an index; ``exact=True`` (or no hnswlib) searches exactly."""
        files = read_index(index_dir)
        if exact or files.manifest.ann == "exact" or not hnswlib_available():
            search: NeighbourSearch = ExactSearch(files.embeddings)
        else:
            search = files.load_graph()
        return cls(files, search)

    def close(self) -> None:
        """Drop the embeddings map and the graph; searching afterwards raises SncaError."""
        self._embeddings = None
        self._search = None
        self._members.clear()

    def __enter__(self) -> TileIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def backend(self) -> str:
        return self._open_search().name

    def _open_search(self) -> NeighbourSearch:
        if self._search is None:
            raise SncaError(f"index {self.directory} was closed")
        return self._search

    def _open_embeddings(self) -> np.ndarray:
        if self._embeddings is None:
            raise SncaError(f"index {self.directory} was closed")
        return self._embeddings

    @property
    def class_names(self) -> list[str]:
        return self.manifest.class_names

    @property
    def count(self) -> int:
        return self.manifest.count

    # -- tiles ---------------------------------------------------------------------------

    def tile(self, tile_id: int) -> IndexedTile:
        """The indexed tile with this id."""
        if not 0 <= tile_id < self.count:
            raise SncaError(f"tile id {tile_id} is not in the index (ids 0..{self.count - 1})")
        row = self._tiles[tile_id]
        raster = int(row["raster"])
        return IndexedTile(
            tile_id=int(tile_id),
            raster=self._raster_paths[raster],
            crs=self._grids[raster].crs,
            window=(
                int(row["col_off"]),
                int(row["row_off"]),
                int(row["width"]),
                int(row["height"]),
            ),
            bounds=(float(row["minx"]), float(row["miny"]), float(row["maxx"]), float(row["maxy"])),
            class_name=self.class_names[int(row["class_index"])],
            score=float(row["score"]),
        )

    def tile_at(self, x: float, y: float, crs: str | None = None) -> IndexedTile:
        """The indexed tile under a point; ``crs`` None means each raster's own CRS.

        Rasters are tried in index order; raise SncaError when the point is outside every
        raster, or only over tiles that were skipped for lack of valid pixels.
        """
        point_crs = None if crs is None else _parse_crs(crs)
        label = f"point ({x}, {y})" + ("" if crs is None else f" in {crs}")
        inside = False
        for grid in self._grids:
            px, py = x, y
            if point_crs is not None and point_crs != grid.crs:
                xs, ys = transform_coords(point_crs, grid.crs, [x], [y])
                px, py = xs[0], ys[0]
                if not (math.isfinite(px) and math.isfinite(py)):
                    continue
            grid_id = grid.grid_id_at(px, py, self.manifest.tile_size)
            if grid_id is None:
                continue
            inside = True
            first = grid.raster.first_tile_id
            ids = self._tiles["grid_id"][first : first + grid.raster.tile_count]
            position = int(np.searchsorted(ids, grid_id))
            if position < len(ids) and ids[position] == grid_id:
                return self.tile(first + position)
        if inside:
            raise SncaError(
                f"the tile under {label} was not indexed: too few valid pixels (min valid "
                f"{self.manifest.tiling.min_valid})"
            )
        raise SncaError(f"{label} is outside every raster of the index")

    # -- searches ------------------------------------------------------------------------

    def search_tile_id(
        self, tile_id: int, k: int = 10, class_filter: str | None = None
    ) -> SearchResult:
        """The k tiles most similar to an indexed tile (the tile itself excluded)."""
        query = self.tile(tile_id)
        vector = np.asarray(self._open_embeddings()[tile_id], dtype=np.float32)
        return self._run(vector, k, class_filter, query, f"tile {tile_id}")

    def search_point(
        self,
        x: float,
        y: float,
        crs: str | None = None,
        k: int = 10,
        class_filter: str | None = None,
    ) -> SearchResult:
        """The k tiles most similar to the tile under ``(x, y)``; ``crs`` like ``EPSG:32618``
        (None: each raster's own CRS)."""
        query = self.tile_at(x, y, crs)
        return self.search_tile_id(query.tile_id, k, class_filter)

    def search_lonlat(
        self, lon: float, lat: float, k: int = 10, class_filter: str | None = None
    ) -> SearchResult:
        """The k tiles most similar to the tile under a WGS84 longitude/latitude."""
        return self.search_point(lon, lat, WGS84, k, class_filter)

    def search_image(
        self, path: Path | str, model: OnnxModel, k: int = 10, class_filter: str | None = None
    ) -> SearchResult:
        """The k tiles most similar to an image file, embedded with the index's model.

        The image is resized to the model's tile; a GeoTIFF takes the index's band choice, a
        JPEG/PNG is used as it is; values are scaled like the rasters were.
        """
        check_model(self.manifest, model, self.directory)
        pixels = image_as_model_input(Path(path), model.metadata, self.manifest.tiling)
        vector = normalize(model.run(pixels[None]).embedding)[0]
        return self._run(vector, k, class_filter, None, f"image {Path(path).name}")

    def search_embedding(
        self, embedding: np.ndarray, k: int = 10, class_filter: str | None = None
    ) -> SearchResult:
        """The k tiles most similar to an embedding vector of the index's dimension."""
        return self._run(np.asarray(embedding, np.float32), k, class_filter, None, "embedding")

    def _run(
        self,
        vector: np.ndarray,
        k: int,
        class_filter: str | None,
        query: IndexedTile | None,
        label: str,
    ) -> SearchResult:
        if k < 1:
            raise SncaError(f"k must be at least 1 (got {k})")
        start = time.perf_counter()
        exclude = None if query is None else query.tile_id
        if class_filter is None:
            ids, sims = self._nearest(vector, k, exclude)
        else:
            ids, sims = self._nearest_of_class(vector, k, self._class_index(class_filter), exclude)
        seconds = time.perf_counter() - start
        hits = [
            Hit(rank=rank, similarity=float(sim), tile=self.tile(int(tile_id)))
            for rank, (tile_id, sim) in enumerate(zip(ids, sims, strict=True), start=1)
        ]
        return SearchResult(query, label, hits, class_filter, self.backend, seconds)

    def _class_index(self, name: str) -> int:
        if name not in self.class_names:
            raise SncaError(
                f"class {name!r} is not one of the model's: {', '.join(self.class_names)}"
            )
        return self.class_names.index(name)

    def _nearest(
        self, vector: np.ndarray, k: int, exclude: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        found = self._open_search().query(vector, k + (exclude is not None))
        ids, sims = found.ids[0], found.similarities[0]
        keep = ids != exclude if exclude is not None else np.ones(len(ids), bool)
        return ids[keep][:k], sims[keep][:k]

    def _nearest_of_class(
        self, vector: np.ndarray, k: int, class_index: int, exclude: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        members = self._class_members(class_index)
        wanted = k + (exclude is not None)
        search = self._open_search()
        if not isinstance(search, ExactSearch) and len(members):
            query_size = math.ceil(wanted * CLASS_OVERSAMPLING * self.count / len(members))
            while query_size <= min(self.count, MAX_OVERSAMPLED_QUERY):
                found = search.query(vector, query_size)
                ids, sims = found.ids[0], found.similarities[0]
                keep = self._tiles["class_index"][ids] == class_index
                if exclude is not None:
                    keep &= ids != exclude
                if keep.sum() >= k or query_size == self.count:
                    return ids[keep][:k], sims[keep][:k]
                query_size = min(self.count, query_size * 4)
        exact = ExactSearch(np.asarray(self._open_embeddings()[members]), ids=members)
        found = exact.query(vector, wanted)
        ids, sims = found.ids[0], found.similarities[0]
        keep = ids != exclude if exclude is not None else np.ones(len(ids), bool)
        return ids[keep][:k], sims[keep][:k]

    def _class_members(self, class_index: int) -> np.ndarray:
        if class_index not in self._members:
            self._members[class_index] = np.flatnonzero(self._tiles["class_index"] == class_index)
        return self._members[class_index]


def image_as_model_input(path: Path, metadata: ModelMetadata, tiling: TilingOptions) -> np.ndarray:
    """An image file as one model input (bands x T x T float32 in [0, 1])."""
    image = read_image(path)
    bands = tiling.bands if path.suffix.lower() in (".tif", ".tiff") else None
    if bands is not None:
        if max(bands) > image.shape[2]:
            raise SncaError(
                f"image {path.name} has {image.shape[2]} band(s); the index reads bands "
                f"{', '.join(map(str, bands))}"
            )
        image = image[..., [b - 1 for b in bands]]
    if image.shape[2] != metadata.input_bands:
        raise SncaError(
            f"image {path.name} has {image.shape[2]} band(s); the model takes "
            f"{metadata.input_bands}"
        )
    image = resize_image(image, metadata.tile_size)
    pixels = np.moveaxis(image, -1, 0).astype(np.float32)
    if tiling.stretch == "percentile":
        flat = pixels.reshape(len(pixels), -1)
        low, high = np.percentile(flat, STRETCH_PERCENTILES, axis=1)
        scaled = (pixels - low[:, None, None]) / np.maximum(high - low, 1e-12)[:, None, None]
    else:
        dtype = image.dtype
        divisor = metadata.input_scale.get(dtype.name)
        if divisor is None and dtype.kind == "f":
            divisor = metadata.input_scale.get("float32")
        if divisor is None:
            raise SncaError(
                f"the model has no input_scale for {dtype.name} images "
                f"(it knows {', '.join(metadata.input_scale)})"
            )
        scaled = pixels / float(divisor)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)
