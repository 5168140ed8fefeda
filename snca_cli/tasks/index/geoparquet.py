"""``snca index export``: an index's tiles and embeddings as one GeoParquet 1.1 file.

One row per tile, in index order: ``tile_id`` (the tile's id in its raster's grid, as
``snca classify`` numbers tiles), ``index_row``, ``raster`` (its file name) and
``raster_path`` (as indexed), the window (``row``, ``col``, ``col_off``, ``row_off``, ``width``,
``height``, pixels of the tiling grid), ``class_id``, ``class_name``, ``score``,
``valid_fraction``, ``embedding`` (a fixed-size list of float32, the unit embedding), the
``bbox`` covering struct and ``geometry`` (WKB polygon). This is the layout of the embedding
datasets of Earth Index, Clay and TorchGeo: a vector file any GIS, geopandas or DuckDB opens.

The geometry is in the index's CRS when all its rasters share one; an index over rasters in
several CRSs is written in EPSG:4326, each footprint densified along its edges before it is
reprojected. The file metadata carries the GeoParquet ``geo`` key (PROJJSON CRS, bbox,
covering) and an ``snca`` key: the model's name and SHA-256, embedding size, class names, tile
size and tiling options.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

import numpy as np
from rasterio.crs import CRS

from snca_cli.errors import SncaError, first_line
from snca_cli.runtime.atomic import atomic_output, check_writable
from snca_cli.runtime.vector import WGS84, box_rings, densify_rings, polygon_wkb, reproject_rings
from snca_cli.tasks.index.store import IndexFiles, read_index

GEOPARQUET_VERSION = "1.1.0"


@dataclass(frozen=True)
class ExportSummary:
    """What was written."""

    path: Path
    count: int
    crs: str
    embedding_dim: int


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise SncaError('writing GeoParquet needs pyarrow: pip install "snca[parquet]"') from None
    return pyarrow, pyarrow.parquet


def _geometry(index: IndexFiles) -> tuple[np.ndarray, CRS]:
    """The tiles' footprints (rings N x V x 2) and their CRS."""
    tiles, rasters = index.tiles, index.manifest.rasters
    bounds = np.stack([tiles["minx"], tiles["miny"], tiles["maxx"], tiles["maxy"]], axis=1)
    rings = box_rings(bounds)
    crss = [raster.crs for raster in rasters]
    if all(crs == crss[0] for crs in crss):
        return rings, crss[0]
    dense = densify_rings(rings)
    out = np.empty_like(dense)
    for position, crs in enumerate(crss):
        mine = tiles["raster"] == position
        out[mine] = reproject_rings(dense[mine], crs, WGS84)
    return out, WGS84


def export_geoparquet(
    index_dir: Path | str, output: Path | str, force: bool = False
) -> ExportSummary:
    """Write the index at ``index_dir`` as the GeoParquet file ``output``."""
    output = Path(output)
    if output.suffix.lower() != ".parquet":
        raise SncaError(f"{output}: the GeoParquet output must end in .parquet")
    pa, pq = _pyarrow()
    check_writable(output, force)
    index = read_index(index_dir, mmap=False)
    manifest, tiles = index.manifest, index.tiles
    count, dim = manifest.count, manifest.embedding_dim
    rings, crs = _geometry(index)
    names = np.asarray(manifest.class_names, dtype=object)
    rasters = [PurePath(r.path).name for r in manifest.rasters]
    paths = [r.path for r in manifest.rasters]
    xs, ys = rings[..., 0], rings[..., 1]
    bbox = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())] if count else []
    embeddings = np.ascontiguousarray(index.embeddings, dtype=np.float32).reshape(-1)
    columns = {
        "tile_id": pa.array(tiles["grid_id"].astype(np.int64)),
        "index_row": pa.array(np.arange(count, dtype=np.int64)),
        "raster": pa.array([rasters[i] for i in tiles["raster"]], pa.string()),
        "raster_path": pa.array([paths[i] for i in tiles["raster"]], pa.string()),
        **{key: pa.array(tiles[key]) for key in ("row", "col", "col_off", "row_off")},
        **{key: pa.array(tiles[key]) for key in ("width", "height")},
        "class_id": pa.array(tiles["class_index"]),
        "class_name": pa.array(list(names[tiles["class_index"]]), pa.string()),
        "score": pa.array(tiles["score"]),
        "valid_fraction": pa.array(tiles["valid_fraction"]),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings), dim),
        "bbox": pa.StructArray.from_arrays(
            [pa.array(a) for a in (xs.min(1), ys.min(1), xs.max(1), ys.max(1))],
            names=["xmin", "ymin", "xmax", "ymax"],
        ),
        "geometry": pa.array(list(polygon_wkb(rings)), pa.binary()),
    }
    geo = {
        "version": GEOPARQUET_VERSION,
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Polygon"],
                "crs": crs.to_dict(projjson=True),
                "edges": "planar",
                "bbox": bbox,
                "covering": {
                    "bbox": {key: ["bbox", key] for key in ("xmin", "ymin", "xmax", "ymax")}
                },
            }
        },
    }
    snca = {
        "model_name": manifest.model_name,
        "model_sha256": manifest.model_sha256,
        "embedding_dim": dim,
        "class_names": manifest.class_names,
        "tile_size": manifest.tile_size,
        "tiling": asdict(manifest.tiling),
        "snca_version": manifest.snca_version,
    }
    table = pa.table(columns).replace_schema_metadata(
        {"geo": json.dumps(geo), "snca": json.dumps(snca)}
    )
    try:
        with atomic_output(output, force=force) as tmp:
            pq.write_table(table, tmp, compression="zstd")
    except OSError as exc:
        raise SncaError(f"cannot write {output}: {first_line(exc)}") from None
    return ExportSummary(output, count, crs.to_string(), dim)
