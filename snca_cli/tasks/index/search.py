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

import bisect
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform as transform_coords

from snca_cli.errors import SncaError
from snca_cli.runtime.ann import (
    ExactSearch,
    HnswSearch,
    NeighbourSearch,
    hnswlib_available,
    normalize,
)
from snca_cli.runtime.grid import TileGrid
from snca_cli.runtime.image_input import image_as_model_input
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.results import WGS84, Hit, IndexedTile, SearchResult
from snca_cli.tasks.index.store import IndexFiles, Manifest, check_model, read_index

#: How many times more neighbours than needed a class-filtered query asks for at first.
CLASS_OVERSAMPLING = 2.0
#: Largest oversampled approximate query; beyond it the class's tiles are searched exactly.
MAX_OVERSAMPLED_QUERY = 4096


def check_lonlat(lon: float, lat: float) -> None:
    """Raise SncaError unless (lon, lat) is a WGS84 longitude/latitude."""
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise SncaError(f"longitude must be -180 to 180 (got {lon})")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise SncaError(f"latitude must be -90 to 90 (got {lat})")


def _without(
    ids: np.ndarray, sims: np.ndarray, exclude: set[int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` neighbours that are not in ``exclude``."""
    keep = ~np.isin(ids, list(exclude)) if exclude else np.ones(len(ids), bool)
    return ids[keep][:k], sims[keep][:k]


def _unique(tiles: Sequence[IndexedTile]) -> list[IndexedTile]:
    """``tiles`` without repeats (the same tile given twice counts once), in order."""
    first: dict[int, IndexedTile] = {}
    for tile in tiles:
        first.setdefault(tile.index_row, tile)
    return list(first.values())


def _parse_crs(crs: str) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise SncaError(f"unknown CRS {crs!r}: {exc}") from None


class TileIndex:
    """An open index, ready for repeated searches (a query takes well under a millisecond to
    a few milliseconds with hnswlib; opening reads the manifest and maps the tile table and the
    embeddings).

    Open with :meth:`open`; :meth:`close` (or a ``with`` block) releases the memory-mapped
    tile table and embeddings and the graph (on Windows a mapped file blocks ``add_to_index``).
    Attributes:
    ``directory``, ``manifest``, ``backend`` ("hnswlib" or "exact"), ``class_names``, ``count``.
    Not thread-safe: use one ``TileIndex`` per thread.
    """

    def __init__(self, files: IndexFiles, exact: bool) -> None:
        self.directory = files.directory
        self.manifest: Manifest = files.manifest
        self._files: IndexFiles | None = files  # None once closed
        self._exact = exact
        self._search: NeighbourSearch | None = None  # loaded by the first search
        self._members: dict[int, np.ndarray] = {}
        tiling = self.manifest.tiling
        self._grids = [
            TileGrid.for_options(r.transform, r.width, r.height, self.manifest.tile_size, tiling)
            for r in self.manifest.rasters
        ]
        self._crss = [r.crs for r in self.manifest.rasters]
        self._raster_paths = [r.resolve(self.directory) for r in self.manifest.rasters]

    @classmethod
    def open(cls, index_dir: Path | str, exact: bool = False, verify: str = "auto") -> TileIndex:
        """Open and check an index; ``exact=True`` (or no hnswlib) searches exactly.

        The files' checksums are verified unless a verification of these very files is recorded
        (``verify="always"`` verifies them anyway: :func:`read_index`). The hnswlib graphs
        (every shard's) are loaded by the first similarity search, from the files verified on
        opening: looking tiles up (:meth:`tile`, :meth:`tile_at`) needs only the tile table.
        """
        files = read_index(index_dir, verify=verify)
        exact = exact or files.manifest.ann == "exact" or not hnswlib_available()
        if exact:
            files.close()
        return cls(files, exact)

    def close(self) -> None:
        """Drop the maps of the tile table and the embeddings, and the graph; searching or
        looking tiles up afterwards raises SncaError. Idempotent."""
        if self._files is not None:
            self._files.close()
        self._files = None
        self._search = None
        self._members.clear()

    def __enter__(self) -> TileIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def backend(self) -> str:
        """``"exact"`` or ``"hnswlib"``: how similarity searches are answered."""
        self._opened()
        return ExactSearch.name if self._exact else HnswSearch.name

    @property
    def graph_loaded(self) -> bool:
        """Whether a search has loaded the neighbour search (the graphs) yet."""
        return self._search is not None

    def _open_search(self) -> NeighbourSearch:
        files = self._opened()
        if self._search is None:
            self._search = ExactSearch(files.embeddings) if self._exact else files.load_graph()
        return self._search

    def _opened(self) -> IndexFiles:
        """The index's files (its tile table and embeddings); SncaError once closed."""
        if self._files is None:
            raise SncaError(f"index {self.directory} was closed")
        return self._files

    @property
    def class_names(self) -> list[str]:
        return self.manifest.class_names

    @property
    def count(self) -> int:
        return self.manifest.count

    # -- tiles ---------------------------------------------------------------------------

    def tile_at_row(self, index_row: int) -> IndexedTile:
        """The tile in row ``index_row`` of the index's tile table (0 .. count - 1)."""
        if not 0 <= index_row < self.count:
            raise SncaError(f"row {index_row} is not in the index (rows 0..{self.count - 1})")
        row = self._opened().tiles[index_row]
        raster = int(row["raster"])
        return IndexedTile(
            tile_id=int(row["grid_id"]),
            row=int(row["row"]),
            col=int(row["col"]),
            index_row=int(index_row),
            raster=self._raster_paths[raster],
            crs=self._crss[raster],
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

    def tile(self, tile_id: int, raster: str | None = None) -> IndexedTile:
        """The indexed tile with this grid id (``row * n_cols + col``, as ``snca classify``
        numbers tiles) in ``raster`` (its file name or path as indexed; None: the one raster
        of the index that has such a tile).

        Raise SncaError when no raster (or several, without ``raster``) has that tile, or the
        tile was not indexed for lack of valid pixels.
        """
        numbers = self._raster_numbers(raster)
        found: list[int] = []
        for number in numbers:
            index_row = self._row_of(number, tile_id)
            if index_row is not None:
                found.append(index_row)
        if len(found) == 1:
            return self.tile_at_row(found[0])
        if len(found) > 1:
            names = ", ".join(self._raster_paths[n].name for n in numbers)
            raise SncaError(
                f"tile id {tile_id} is in several rasters of the index ({names}): name the raster"
            )
        where = "the index" if raster is None else self._raster_paths[numbers[0]].name
        grids = [self._grids[n] for n in numbers]
        if any(0 <= tile_id < g.n_rows * g.n_cols for g in grids):
            raise SncaError(
                f"tile {tile_id} of {where} was not indexed: too few valid pixels (min valid "
                f"{self.manifest.tiling.min_valid})"
            )
        largest = max(g.n_rows * g.n_cols for g in grids) - 1
        raise SncaError(f"tile id {tile_id} is not in {where} (tile ids 0..{largest})")

    def _raster_numbers(self, raster: str | None) -> list[int]:
        """Positions in the manifest of the rasters named ``raster`` (all when None)."""
        if raster is None:
            return list(range(len(self.manifest.rasters)))
        numbers = [
            n
            for n, (r, path) in enumerate(
                zip(self.manifest.rasters, self._raster_paths, strict=True)
            )
            if raster in (r.path, r.relative_path, path.name, str(path))
        ]
        if not numbers:
            names = ", ".join(p.name for p in self._raster_paths)
            raise SncaError(f"raster {raster!r} is not in the index (rasters: {names})")
        return numbers

    def _row_of(self, raster_number: int, grid_id: int) -> int | None:
        """The index row of tile ``grid_id`` of a raster, or None when it was not indexed.

        A binary search reading about log2(tiles) rows of the mapped table (``np.searchsorted``
        would first copy the raster's whole column: 0.8 GB and the whole table read for 10^8).
        """
        raster = self.manifest.rasters[raster_number]
        first = raster.first_tile_id
        ids = self._opened().tiles["grid_id"][first : first + raster.tile_count]
        position = bisect.bisect_left(ids, grid_id)
        if position < len(ids) and ids[position] == grid_id:
            return first + position
        return None

    def tile_at(self, x: float, y: float, crs: str | None = None) -> IndexedTile:
        """The indexed tile under a point; ``crs`` None means each raster's own CRS.

        Rasters are tried in index order; raise SncaError when the point is outside every
        raster, or only over tiles that were skipped for lack of valid pixels.
        """
        point_crs = None if crs is None else _parse_crs(crs)
        label = f"point ({x}, {y})" + ("" if crs is None else f" in {crs}")
        inside = False
        for number, (grid, grid_crs) in enumerate(zip(self._grids, self._crss, strict=True)):
            px, py = x, y
            if point_crs is not None and point_crs != grid_crs:
                try:
                    xs, ys = transform_coords(point_crs, grid_crs, [x], [y])
                except Exception:  # noqa: BLE001 - PROJ's errors (private classes): not in it
                    continue
                px, py = xs[0], ys[0]
                if not (math.isfinite(px) and math.isfinite(py)):
                    continue
            tile = grid.tile_at(px, py)
            if tile is None:
                continue
            inside = True
            index_row = self._row_of(number, tile.tile_id)
            if index_row is not None:
                return self.tile_at_row(index_row)
        if inside:
            raise SncaError(
                f"the tile under {label} was not indexed: too few valid pixels (min valid "
                f"{self.manifest.tiling.min_valid})"
            )
        raise SncaError(f"{label} is outside every raster of the index")

    # -- searches ------------------------------------------------------------------------

    def search_tile(
        self, query: IndexedTile, k: int = 10, class_filter: str | None = None
    ) -> SearchResult:
        """The k tiles most similar to an indexed tile (the tile itself excluded)."""
        return self.search_examples([query], [], k, class_filter)

    def search_tile_id(
        self,
        tile_id: int,
        k: int = 10,
        class_filter: str | None = None,
        raster: str | None = None,
    ) -> SearchResult:
        """The k tiles most similar to tile ``tile_id`` of ``raster`` (see :meth:`tile`)."""
        return self.search_tile(self.tile(tile_id, raster), k, class_filter)

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
        return self.search_tile(self.tile_at(x, y, crs), k, class_filter)

    def search_lonlat(
        self, lon: float, lat: float, k: int = 10, class_filter: str | None = None
    ) -> SearchResult:
        """The k tiles most similar to the tile under a WGS84 longitude/latitude."""
        check_lonlat(lon, lat)
        return self.search_point(lon, lat, WGS84, k, class_filter)

    def search_examples(
        self,
        positives: Sequence[IndexedTile],
        negatives: Sequence[IndexedTile] = (),
        k: int = 10,
        class_filter: str | None = None,
    ) -> SearchResult:
        """The k tiles most like the ``positives`` and unlike the ``negatives``.

        Each tile x is scored by its mean cosine similarity to the positive examples minus
        its mean cosine similarity to the negative ones (Rocchio's rule with equal weights):
        ``score(x) = x · (mean(p) - mean(n))`` for unit embeddings, so the ranking is one
        nearest-neighbour query with that vector, exact with ``--exact`` and as good as the
        graph otherwise. With one positive and no negative the score is the cosine. The
        example tiles themselves are never hits.
        """
        if not positives:
            raise SncaError("give at least one positive example tile")
        positives, negatives = _unique(positives), _unique(negatives)
        embeddings = self._opened().embeddings
        positive_rows = [t.index_row for t in positives]
        negative_rows = [t.index_row for t in negatives]
        overlap = set(positive_rows) & set(negative_rows)
        if overlap:
            tile = self.tile_at_row(min(overlap))
            raise SncaError(
                f"tile {tile.tile_id} of {tile.raster.name} is both a positive and a negative "
                "example"
            )
        direction = np.asarray(embeddings[positive_rows], np.float64).mean(axis=0)
        if negative_rows:
            direction -= np.asarray(embeddings[negative_rows], np.float64).mean(axis=0)
        norm = float(np.linalg.norm(direction))
        if norm == 0.0:
            raise SncaError("the positive and negative examples cancel out: nothing to rank by")
        vector = (direction / norm).astype(np.float32)
        label = ", ".join(f"tile {t.tile_id}" for t in positives)
        if negatives:
            label += " not " + ", ".join(f"tile {t.tile_id}" for t in negatives)
        return self._run(
            vector,
            k,
            class_filter,
            positives=positives,
            negatives=negatives,
            label=label,
            scale=norm,
        )

    def search_image(
        self, path: Path | str, model: OnnxModel, k: int = 10, class_filter: str | None = None
    ) -> SearchResult:
        """The k tiles most similar to an image file, embedded with the index's model.

        The image is resized to the model's tile; a GeoTIFF takes the index's band choice, a
        JPEG/PNG is used as it is; its raw values are scaled like the index's rasters were
        (:func:`snca_cli.contract.scaling.query_scaling`: by their recorded scaling), so the
        exact pixels of an indexed tile find that tile with similarity 1.
        """
        model = model.following(self.manifest.precision)
        check_model(self.manifest, model, self.directory)
        metadata, tiling = model.metadata, self.manifest.tiling
        pixels = image_as_model_input(
            path,
            size=metadata.tile_size,
            input_bands=metadata.input_bands,
            input_scale=metadata.input_scale,
            bands=tiling.bands,
            stretch=tiling.stretch,
            index_scalings=[raster.scaling for raster in self.manifest.rasters],
        )
        vector = normalize(model.run(pixels[None]).embedding)[0]
        return self._run(vector, k, class_filter, [], [], f"image {Path(path).name}")

    def _run(
        self,
        vector: np.ndarray,
        k: int,
        class_filter: str | None,
        positives: list[IndexedTile],
        negatives: list[IndexedTile],
        label: str,
        scale: float = 1.0,
    ) -> SearchResult:
        """Search with a unit ``vector``; hits' similarity = ``scale`` x cosine (the score of
        :meth:`search_examples`), example tiles excluded."""
        if k < 1:
            raise SncaError(f"k must be at least 1 (got {k})")
        start = time.perf_counter()
        exclude = {t.index_row for t in positives + negatives}
        if class_filter is None:
            ids, sims = self._nearest(vector, k, exclude)
        else:
            ids, sims = self._nearest_of_class(vector, k, self._class_index(class_filter), exclude)
        seconds = time.perf_counter() - start
        hits = [
            Hit(rank=rank, similarity=float(sim) * scale, tile=self.tile_at_row(int(row)))
            for rank, (row, sim) in enumerate(zip(ids, sims, strict=True), start=1)
        ]
        return SearchResult(positives, negatives, label, hits, class_filter, self.backend, seconds)

    def _class_index(self, name: str) -> int:
        if name not in self.class_names:
            raise SncaError(
                f"class {name!r} is not one of the model's: {', '.join(self.class_names)}"
            )
        return self.class_names.index(name)

    def _nearest(
        self, vector: np.ndarray, k: int, exclude: set[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        found = self._open_search().query(vector, k + len(exclude))
        return _without(found.ids[0], found.similarities[0], exclude, k)

    def _nearest_of_class(
        self, vector: np.ndarray, k: int, class_index: int, exclude: set[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        members = self._class_members(class_index)
        wanted = k + len(exclude)
        search = self._open_search()
        if not isinstance(search, ExactSearch) and len(members):
            query_size = math.ceil(wanted * CLASS_OVERSAMPLING * self.count / len(members))
            while query_size <= min(self.count, MAX_OVERSAMPLED_QUERY):
                found = search.query(vector, query_size)
                ids, sims = found.ids[0], found.similarities[0]
                of_class = self._opened().tiles["class_index"][ids] == class_index
                ids, sims = _without(ids[of_class], sims[of_class], exclude, k)
                if len(ids) >= k or query_size == self.count:
                    return ids, sims
                query_size = min(self.count, query_size * 4)
        exact = ExactSearch(np.asarray(self._opened().embeddings[members]), ids=members)
        found = exact.query(vector, wanted)
        return _without(found.ids[0], found.similarities[0], exclude, k)

    def _class_members(self, class_index: int) -> np.ndarray:
        if class_index not in self._members:
            classes = self._opened().tiles["class_index"]
            self._members[class_index] = np.flatnonzero(classes == class_index)
        return self._members[class_index]
