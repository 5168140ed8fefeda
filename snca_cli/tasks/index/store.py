"""The index format: the files of an index folder, how they are read, checked and written.

An index is a folder, written atomically (built in a temporary sibling, then renamed; an
``add`` writes new versions of every file in a temporary sibling and swaps the folders), so an
interrupted build or add never leaves a broken index:

* ``manifest.json``: format, the model (sha256, embedding size, classes, tile size, resolution),
  the hnswlib parameters (space, M, ef_construction, ef), the tiling options, the tile count and,
  for each raster, its path (absolute and relative to the index), CRS (WKT and EPSG), tiling
  grid (transform, width, height) and its range of tile ids;
* ``index.hnsw``: the hnswlib graph (cosine space; labels are the tile ids), absent when the
  index was built without hnswlib (searches are then exact);
* ``embeddings.npy``: the unit embeddings, float32, row = tile id (the exact search and
  ``index add`` use them);
* ``tiles.npy``: the tile table, row = tile id (:data:`TILE_DTYPE`), read by the search;
* ``tiles.gpkg``: the same table as polygons for a GIS, one layer per CRS
  (``tiles_epsg_<code>``, or ``tiles_crs_<n>`` for a CRS without EPSG code); windows are in
  pixels of the raster's tiling grid (the raster's own grid unless it was resampled).

Tile ids are 0..count-1 in the order the rasters were given, tiles in grid order within a
raster; ``add`` continues them. Only tiles with enough valid pixels are indexed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from snca_cli import __version__
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.ann import HnswSearch, IndexParams
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.vector import box_rings, write_polygons

FORMAT = "snca-index"
FORMAT_VERSION = 1
SPACE = "cosine"
MANIFEST_NAME = "manifest.json"
GRAPH_NAME = "index.hnsw"
EMBEDDINGS_NAME = "embeddings.npy"
TILES_NAME = "tiles.npy"
TABLE_NAME = "tiles.gpkg"

#: One row per indexed tile, row number = tile id.
TILE_DTYPE = np.dtype(
    [
        ("raster", "<i4"),  # position of the raster in the manifest
        ("grid_id", "<i8"),  # the tile's id in its raster's grid: row * n_cols + col
        ("row", "<i4"),
        ("col", "<i4"),
        ("col_off", "<i8"),  # window in pixels of the tiling grid
        ("row_off", "<i8"),
        ("width", "<i4"),
        ("height", "<i4"),
        ("minx", "<f8"),  # bounds in the raster's CRS
        ("miny", "<f8"),
        ("maxx", "<f8"),
        ("maxy", "<f8"),
        ("valid_fraction", "<f4"),
        ("class_index", "<i4"),  # predicted class (argmax of the probabilities)
        ("score", "<f4"),  # its probability
    ]
)


@dataclass
class IndexedRaster:
    """A raster of the index, as recorded in the manifest."""

    path: str  # absolute path when indexed
    relative_path: str  # relative to the index folder
    crs_wkt: str
    epsg: int | None
    transform: list[float]  # the tiling grid's affine transform (a, b, c, d, e, f)
    width: int  # the tiling grid's size in pixels
    height: int
    resampled: bool  # whether the grid differs from the raster's own
    first_tile_id: int
    tile_count: int  # tiles indexed
    skipped: int  # tiles with too few valid pixels
    layer: str  # its layer in tiles.gpkg

    @property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.crs_wkt)

    def resolve(self, index_dir: Path) -> Path:
        """The raster file: its absolute path, or the relative one when the files moved."""
        absolute = Path(self.path)
        if absolute.exists():
            return absolute
        relative = Path(index_dir) / self.relative_path
        return relative if relative.exists() else absolute


@dataclass
class Manifest:
    """The contents of ``manifest.json``."""

    model_sha256: str
    model_name: str
    embedding_dim: int
    class_names: list[str]
    tile_size: int
    model_resolution_m: float | None
    input_bands: int
    tiling: TilingOptions
    params: IndexParams
    ann: str  # "hnswlib" (index.hnsw holds the graph) or "exact" (no graph)
    count: int
    graph_bytes: int  # size of index.hnsw, 0 without graph
    rasters: list[IndexedRaster] = field(default_factory=list)
    snca_version: str = __version__

    def to_json(self) -> str:
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "snca_version": self.snca_version,
            "model": {
                "sha256": self.model_sha256,
                "name": self.model_name,
                "embedding_dim": self.embedding_dim,
                "class_names": self.class_names,
                "tile_size": self.tile_size,
                "resolution_m": self.model_resolution_m,
                "input_bands": self.input_bands,
            },
            "index": {
                "library": self.ann,
                "space": SPACE,
                "M": self.params.M,
                "ef_construction": self.params.ef_construction,
                "ef": self.params.ef,
                "count": self.count,
                "graph_bytes": self.graph_bytes,
            },
            "tiling": asdict(self.tiling),
            "rasters": [asdict(r) for r in self.rasters],
        }
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str) -> Manifest:
        """Parse a manifest; raise SncaError naming ``source`` when it is not a valid one."""
        try:
            payload = json.loads(text)
            if payload.get("format") != FORMAT:
                raise SncaError(f"{source} is not an snca index manifest")
            if payload.get("format_version") != FORMAT_VERSION:
                raise SncaError(
                    f"{source} has index format version {payload.get('format_version')}; "
                    f"this snca reads version {FORMAT_VERSION} (rebuild the index)"
                )
            model, index, tiling = payload["model"], payload["index"], payload["tiling"]
            if index["space"] != SPACE or index["library"] not in ("hnswlib", "exact"):
                raise SncaError(f"{source} describes an unsupported index {index}")
            bands = tiling.get("bands")
            tiling = {**tiling, "bands": None if bands is None else tuple(bands)}
            return cls(
                model_sha256=str(model["sha256"]),
                model_name=str(model["name"]),
                embedding_dim=int(model["embedding_dim"]),
                class_names=[str(n) for n in model["class_names"]],
                tile_size=int(model["tile_size"]),
                model_resolution_m=model["resolution_m"],
                input_bands=int(model["input_bands"]),
                tiling=TilingOptions(
                    **{**tiling, "bands": None if bands is None else tuple(bands)}
                ),
                params=IndexParams(
                    M=int(index["M"]),
                    ef_construction=int(index["ef_construction"]),
                    ef=int(index["ef"]),
                ),
                ann=str(index["library"]),
                count=int(index["count"]),
                graph_bytes=int(index["graph_bytes"]),
                rasters=[IndexedRaster(**r) for r in payload["rasters"]],
                snca_version=str(payload.get("snca_version", "")),
            )
        except SncaError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SncaError(f"{source} is corrupt: {type(exc).__name__}: {exc}") from None



@dataclass
class IndexFiles:
    """A checked index folder: manifest, tile table and embeddings (memory-mapped)."""

    directory: Path
    manifest: Manifest
    tiles: np.ndarray  # TILE_DTYPE, row = tile id
    embeddings: np.ndarray  # count x D float32 unit vectors

    @property
    def graph_path(self) -> Path:
        return self.directory / GRAPH_NAME

    def load_graph(self) -> HnswSearch:
        """The hnswlib graph (needs hnswlib and an index built with it)."""
        return HnswSearch.load(
            self.graph_path,
            self.manifest.embedding_dim,
            self.manifest.params,
            self.manifest.count,
        )


def _corrupt(directory: Path, what: str) -> SncaError:
    return SncaError(f"index {directory} is corrupt: {what} (rebuild it with `snca index build`)")


def read_index(index_dir: Path | str, mmap: bool = True) -> IndexFiles:
    """Open an index folder and check that its files agree; raise SncaError otherwise."""
    directory = Path(index_dir)
    if not directory.is_dir():
        raise SncaError(f"index {directory} does not exist")
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise SncaError(f"{directory} is not an snca index (no {MANIFEST_NAME})")
    try:
        text = manifest_path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(directory, f"cannot read {MANIFEST_NAME}: {exc}") from None
    manifest = Manifest.from_json(text, source=f"{manifest_path}")
    try:
        tiles = np.load(directory / TILES_NAME, allow_pickle=False)
        embeddings = np.load(
            directory / EMBEDDINGS_NAME, mmap_mode="r" if mmap else None, allow_pickle=False
        )
    except FileNotFoundError as exc:
        raise _corrupt(directory, f"{Path(exc.filename).name} is missing") from None
    except (OSError, ValueError, EOFError) as exc:
        raise _corrupt(directory, f"unreadable array file ({exc})") from None
    count = manifest.count
    if tiles.dtype != TILE_DTYPE:
        raise _corrupt(directory, f"{TILES_NAME} is not a tile table")
    if embeddings.dtype != np.float32 or embeddings.shape[1:] != (manifest.embedding_dim,):
        raise _corrupt(
            directory,
            f"{EMBEDDINGS_NAME} holds {embeddings.dtype} {embeddings.shape}, the manifest "
            f"{manifest.embedding_dim}-d float32",
        )
    raster_counts = sum(r.tile_count for r in manifest.rasters)
    if not len(tiles) == len(embeddings) == raster_counts == count:
        raise _corrupt(
            directory,
            f"counts disagree: manifest {count}, rasters {raster_counts}, {TILES_NAME} "
            f"{len(tiles)}, {EMBEDDINGS_NAME} {len(embeddings)}",
        )
    if manifest.ann == "hnswlib":
        graph = directory / GRAPH_NAME
        if not graph.is_file():
            raise _corrupt(directory, f"{GRAPH_NAME} is missing")
        if graph.stat().st_size != manifest.graph_bytes:
            raise _corrupt(
                directory,
                f"{GRAPH_NAME} has {graph.stat().st_size} bytes, the manifest says "
                f"{manifest.graph_bytes}",
            )
    return IndexFiles(directory, manifest, tiles, embeddings)


def check_model(manifest: Manifest, model: OnnxModel, directory: Path) -> None:
    """Refuse a model other than the one the index was built with."""
    dim = model.metadata.embedding_dim
    if dim != manifest.embedding_dim:
        raise SncaError(
            f"model {model.path.name} makes {dim}-d embeddings but index {directory} holds "
            f"{manifest.embedding_dim}-d ones; use the model the index was built with"
        )
    if model.sha256 != manifest.model_sha256:
        raise SncaError(
            f"model {model.path.name} (sha256 {model.sha256[:12]}) is not the model index "
            f"{directory} was built with ({manifest.model_name}, sha256 "
            f"{manifest.model_sha256[:12]}); use that model or rebuild the index"
        )


def write_tile_table(path: Path, manifest: Manifest, tiles: np.ndarray) -> None:
    """Write ``tiles.gpkg``: one polygon layer per CRS with each tile's attributes."""
    layers: dict[str, list[int]] = {}
    for number, raster in enumerate(manifest.rasters):
        layers.setdefault(raster.layer, []).append(number)
    for layer, numbers in layers.items():
        ids = np.flatnonzero(np.isin(tiles["raster"], numbers))
        rows = tiles[ids]
        bounds = np.stack([rows["minx"], rows["miny"], rows["maxx"], rows["maxy"]], axis=1)
        names = np.array(manifest.class_names, dtype=object)
        attributes = {
            "tile_id": ids.astype(np.int64),
            "raster": np.array([manifest.rasters[r].path for r in rows["raster"]], dtype=object),
            "raster_index": rows["raster"].astype(np.int32),
            "grid_row": rows["row"],
            "grid_col": rows["col"],
            "col_off": rows["col_off"],
            "row_off": rows["row_off"],
            "width": rows["width"],
            "height": rows["height"],
            "valid_fraction": rows["valid_fraction"].astype(np.float64),
            "class": names[rows["class_index"]],
            "score": rows["score"].astype(np.float64),
        }
        crs = manifest.rasters[numbers[0]].crs
        write_polygons(path, box_rings(bounds), attributes, crs, layer=layer)


def write_index_files(
    directory: Path, manifest: Manifest, tiles: np.ndarray, embeddings: np.ndarray
) -> None:
    """Write the array files, the GPKG and, last, the manifest into ``directory``."""
    np.save(directory / EMBEDDINGS_NAME, embeddings, allow_pickle=False)
    np.save(directory / TILES_NAME, tiles, allow_pickle=False)
    write_tile_table(directory / TABLE_NAME, manifest, tiles)
    manifest.graph_bytes = (
        (directory / GRAPH_NAME).stat().st_size if manifest.ann == "hnswlib" else 0
    )
    (directory / MANIFEST_NAME).write_text(manifest.to_json())
