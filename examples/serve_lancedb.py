"""Serve "tiles similar to tile X" from LanceDB, fed by ``snca index export``.

An snca index is searched by the process that opens it. To serve search to many machines, load
the index's GeoParquet export into a LanceDB table on object storage (``s3://``, ``gs://``,
``az://``) once; then any number of stateless search processes open the same table and answer
queries, reading the vector index and the rows they need from the store (each process caches
what it read). Nothing but the store is shared::

    pip install "snca[serve]"
    snca index export region.index -o tiles.parquet
    python examples/serve_lancedb.py load tiles.parquet s3://bucket/region-db
    python examples/serve_lancedb.py search s3://bucket/region-db --tile-id 1234 \\
        --raster scene.tif --where "class_name = 'forest'" -k 10

The table holds every column of the export (``tile_id``, ``index_row``, ``raster``,
``class_name``, ``embedding``, ``geometry`` as WKB, ...). It is written in record batches, so a
10^7-row export is never held in memory at once, and indexed with:

* an **IVF_PQ** vector index with the squared Euclidean distance. The exported embeddings are
  unit vectors, so ``|a - b|^2 = 2 - 2 cos(a, b)`` ranks exactly as the cosine snca ranks by
  (similarity = 1 - distance / 2); LanceDB's product quantization with the dot product ranked
  badly (recall@10 0.54 against 0.94 with L2 on the same 20,000 vectors, lancedb 0.40). About
  sqrt(rows) partitions (LanceDB's own rule: 1,000 for 10^6 rows), so picking the partitions and
  scanning them cost about the same; 8 dimensions per PQ sub-vector (16 sub-vectors of one byte
  for 128-d: 16 B per vector against 512 B of float32, and the 8-value sub-vectors LanceDB's SIMD
  kernels are written for). A query probes ``nprobes`` partitions and re-ranks
  ``refine_factor`` x k candidates with their full vectors, so the similarities returned are
  exact. A filtered query probes ``nprobes`` divided by the share of rows the filter keeps
  (:func:`probes_for`): a class's tiles lie in few partitions, mostly not the ones nearest a
  query of another class;
* scalar indexes on ``tile_id`` (B-tree: finding the query tile) and ``raster`` and
  ``class_name`` (bitmaps: the ``--where`` filters), applied before the vector search.

Credentials and endpoints come from the usual environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for S3-compatible servers such
as MinIO, and ``AWS_ALLOW_HTTP=true`` for one without TLS) or from ``--storage-option KEY=VALUE``
(LanceDB's names: ``aws_endpoint``, ``allow_http``, ``aws_region``, ...). Load with one writer
at a time; readers see a new load when they next open the table.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely
from lancedb.index import Bitmap, BTree, IvfPq

from snca_cli.errors import SncaError, first_line

#: The table's name in the LanceDB database.
TABLE = "tiles"
#: The export's vector column.
VECTOR = "embedding"
#: Rows per record batch written to LanceDB (about 40 MB of 128-d export rows).
BATCH_ROWS = 65_536
#: Dimensions per PQ sub-vector (one byte each).
PQ_DIMS_PER_SUB_VECTOR = 8
#: LanceDB's distance: squared Euclidean (2 - 2 cosine for unit vectors).
DISTANCE = "l2"
#: The columns a search returns, besides ``similarity``.
RESULT_COLUMNS = ["tile_id", "index_row", "raster", "class_name", "geometry"]
#: The columns of an export this example relies on.
REQUIRED_COLUMNS = {VECTOR, *RESULT_COLUMNS}


@dataclass(frozen=True)
class SearchParams:
    """How a query runs: ``exact`` scans every vector (no index); otherwise the IVF_PQ index
    probes ``nprobes`` partitions (more with a filter, :func:`probes_for`) and re-ranks
    ``refine_factor`` x k candidates exactly."""

    nprobes: int = 20
    refine_factor: int = 50
    exact: bool = False


@dataclass(frozen=True)
class LoadSummary:
    """A loaded table: its rows, vector size, and the seconds writing and indexing took."""

    rows: int
    dim: int
    load_s: float
    index_s: float


def connect(uri: str, storage_options: Mapping[str, str] | None = None) -> lancedb.DBConnection:
    """The LanceDB database at ``uri`` (a folder or an ``s3://``, ``gs://``, ``az://`` URL)."""
    try:
        return lancedb.connect(uri, storage_options=dict(storage_options or {}))
    except (OSError, ValueError, RuntimeError) as exc:
        raise SncaError(f"cannot open the LanceDB database {uri}: {first_line(exc)}") from None


def open_table(
    uri: str, storage_options: Mapping[str, str] | None = None, name: str = TABLE
) -> lancedb.table.Table:
    """The tiles table of the database at ``uri``, as each search process opens it."""
    try:
        return connect(uri, storage_options).open_table(name)
    except (OSError, ValueError, RuntimeError) as exc:
        raise SncaError(f"no table {name!r} in {uri}: {first_line(exc)}") from None


def _export_file(path: Path) -> pq.ParquetFile:
    """The export at ``path``, refused unless it has the columns of ``snca index export``."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SncaError(f"cannot read {path}: {first_line(exc)}") from None
    schema = parquet.schema_arrow
    missing = sorted(REQUIRED_COLUMNS - set(schema.names))
    if missing:
        raise SncaError(f"{path} is not an snca index export: no column {', '.join(missing)}")
    if not pa.types.is_fixed_size_list(schema.field(VECTOR).type):
        raise SncaError(f"{path}: column {VECTOR!r} is not a fixed-size list of floats")
    return parquet


def index_parameters(rows: int, dim: int) -> tuple[int, int]:
    """IVF partitions and PQ sub-vectors for ``rows`` vectors of ``dim`` dimensions."""
    sub_vectors = dim // PQ_DIMS_PER_SUB_VECTOR if dim % PQ_DIMS_PER_SUB_VECTOR == 0 else 1
    return max(1, round(math.sqrt(rows))), sub_vectors


def load_export(
    parquet: Path | str,
    uri: str,
    storage_options: Mapping[str, str] | None = None,
    batch_rows: int = BATCH_ROWS,
    name: str = TABLE,
) -> LoadSummary:
    """Write the GeoParquet export ``parquet`` as table ``name`` of the database at ``uri``
    (replacing it), streamed in batches of ``batch_rows``, and build its indexes."""
    source = _export_file(Path(parquet))
    schema = source.schema_arrow
    start = time.perf_counter()
    batches = pa.RecordBatchReader.from_batches(schema, source.iter_batches(batch_rows))
    table = connect(uri, storage_options).create_table(name, batches, mode="overwrite")
    load_s = time.perf_counter() - start
    rows, dim = table.count_rows(), schema.field(VECTOR).type.list_size
    start = time.perf_counter()
    build_indexes(table, rows, dim)
    return LoadSummary(rows, dim, load_s, time.perf_counter() - start)


def build_indexes(table: lancedb.table.Table, rows: int, dim: int) -> None:
    """The IVF_PQ vector index and the scalar indexes of the filters."""
    partitions, sub_vectors = index_parameters(rows, dim)
    if rows >= 256:  # PQ trains 256 centroids per sub-vector
        quantized = IvfPq(DISTANCE, num_partitions=partitions, num_sub_vectors=sub_vectors)
        table.create_index(VECTOR, config=quantized)
    table.create_index("tile_id", config=BTree())
    for column in ("raster", "class_name"):
        table.create_index(column, config=Bitmap())


def sql_string(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def tile_embedding(
    table: lancedb.table.Table, tile_id: int, raster: str | None = None
) -> tuple[int, np.ndarray]:
    """The index row and embedding of tile ``tile_id`` (of ``raster``, a file name, when tile
    ids repeat across rasters)."""
    condition = f"tile_id = {int(tile_id)}"
    if raster is not None:
        condition += f" AND raster = {sql_string(raster)}"
    found = table.search().where(condition).select(["index_row", "raster", VECTOR]).limit(2)
    rows = found.to_arrow()
    where = f" of {raster}" if raster is not None else ""
    if rows.num_rows == 0:
        raise SncaError(f"no tile {tile_id}{where} in the table")
    if rows.num_rows > 1:
        names = ", ".join(sorted(set(rows["raster"].to_pylist())))
        raise SncaError(f"tile {tile_id} is in several rasters ({names}): give the raster")
    vector = np.asarray(rows[VECTOR][0].values.to_numpy(zero_copy_only=False), np.float32)
    return int(rows["index_row"][0].as_py()), vector


def probes_for(table: lancedb.table.Table, where: str | None, nprobes: int) -> int:
    """The partitions a query probes: ``nprobes``, or with a filter ``where`` that keeps a
    share s of the rows, ``nprobes / s`` (at most every partition), so that about as many rows
    passing the filter are scanned as an unfiltered query scans. Real classes cluster: with 20
    probes and a class filter keeping 7.7 % of 1.25 million real-model embeddings, recall@10 was
    0.45 and 8 % of the queries found fewer than k tiles; with 260 probes it was 0.99
    (docs/scaling.md). Counting the filtered rows uses the scalar indexes (about 1 ms)."""
    if not where:
        return nprobes
    rows, kept = table.count_rows(), table.count_rows(where)
    if kept == 0:
        return nprobes
    partitions = index_parameters(rows, PQ_DIMS_PER_SUB_VECTOR)[0]
    return min(partitions, math.ceil(nprobes * rows / kept))


def search_vector(
    table: lancedb.table.Table,
    vector: np.ndarray,
    k: int = 10,
    where: str | None = None,
    params: SearchParams = SearchParams(),
) -> pa.Table:
    """The ``k`` rows nearest ``vector`` (a unit vector) that satisfy the SQL filter ``where``:
    ``RESULT_COLUMNS`` and ``similarity`` (the cosine), most similar first."""
    query = table.search(vector, vector_column_name=VECTOR).distance_type(DISTANCE).limit(k)
    if where:
        query = query.where(where, prefilter=True)
    try:
        if params.exact:
            query = query.bypass_vector_index()
        else:
            probes = probes_for(table, where, params.nprobes)
            query = query.nprobes(probes).refine_factor(params.refine_factor)
        found = query.select(RESULT_COLUMNS).to_arrow()
    except (OSError, ValueError, RuntimeError) as exc:
        raise SncaError(f"search failed: {first_line(exc)}") from None
    similarity = pc.subtract(1.0, pc.divide(found["_distance"], 2.0))
    return found.select(RESULT_COLUMNS).append_column("similarity", similarity)


def similar_tiles(
    table: lancedb.table.Table,
    tile_id: int,
    raster: str | None = None,
    k: int = 10,
    where: str | None = None,
    params: SearchParams = SearchParams(),
) -> pa.Table:
    """The ``k`` tiles most similar to tile ``tile_id`` (itself excluded), like ``snca search
    --tile-id``; ``where`` filters them, e.g. ``class_name = 'forest'``."""
    row, vector = tile_embedding(table, tile_id, raster)
    hits = search_vector(table, vector, k + 1, where, params)
    return hits.filter(pc.not_equal(hits["index_row"], row)).slice(0, k)


def _storage_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SncaError(f"--storage-option {pair!r}: expected KEY=VALUE")
        options[key] = value
    return options


def _print_hits(hits: pa.Table) -> None:
    print(f"{'rank':>4} {'tile_id':>9} {'similarity':>10}  raster / class / footprint")
    rows = hits.to_pylist()
    for rank, hit in enumerate(rows, start=1):
        bounds = ", ".join(f"{v:.1f}" for v in shapely.from_wkb(hit["geometry"]).bounds)
        print(
            f"{rank:>4} {hit['tile_id']:>9} {hit['similarity']:>10.4f}  "
            f"{hit['raster']} / {hit['class_name']} / ({bounds})"
        )


def main(argv: list[str] | None = None) -> None:
    """``load EXPORT URI`` or ``search URI --tile-id N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE")
    parts = parser.add_subparsers(dest="part", required=True)
    load = parts.add_parser("load", help="write an export into a LanceDB table and index it")
    load.add_argument("export", type=Path, help="the .parquet of snca index export")
    load.add_argument("uri", help="the database: a folder or s3://bucket/path")
    search = parts.add_parser("search", help="the tiles most similar to one tile")
    search.add_argument("uri")
    search.add_argument("--tile-id", type=int, required=True)
    search.add_argument("--raster", help="the raster's file name, where tile ids repeat")
    search.add_argument("--where", help="an SQL filter, e.g. \"class_name = 'forest'\"")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--exact", action="store_true", help="scan every vector, no index")
    args = parser.parse_args(argv)
    try:
        options = _storage_options(args.storage_option)
        if args.part == "load":
            done = load_export(args.export, args.uri, options)
            print(
                f"loaded {done.rows:,} tiles ({done.dim}-d) into {args.uri} in "
                f"{done.load_s:.1f} s, indexed in {done.index_s:.1f} s"
            )
        else:
            table = open_table(args.uri, options)
            params = SearchParams(exact=args.exact)
            _print_hits(similar_tiles(table, args.tile_id, args.raster, args.k, args.where, params))
    except SncaError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
