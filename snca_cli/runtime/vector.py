"""Write polygon layers (tile footprints and their attributes) with pyogrio.

Polygons are simple rings held as one float64 array ``N x V x 2`` (closed: the last vertex
repeats the first). :func:`write_polygons` writes them with attribute columns to any OGR
format (GeoPackage by default) in a given CRS; :func:`write_geojson_wgs84` writes the RFC 7946
GeoJSON copy, reprojected to EPSG:4326 (longitude, latitude), whose ``description`` member
(``snca_<what>: ...``) tells a later run that snca wrote it (:data:`GEOJSON_OUTPUT`).
GeoPackages are written as version ``GPKG_VERSION`` (1.2), which every QGIS 3 reads without
warnings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyogrio.raw
from rasterio.crs import CRS
from rasterio.warp import transform as transform_coords

from snca_cli.errors import SncaError, first_line
from snca_cli.runtime.atomic import OwnOutput

#: GeoPackage version written. GDAL >= 3.9 writes 1.4 by default, which QGIS 3.22's GDAL 3.6
#: logs as "may only be partially supported" on every open; snca's layers need nothing newer.
GPKG_VERSION = "1.2"

#: OGR drivers by file suffix.
DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}

WGS84 = CRS.from_epsg(4326)
#: How every GeoJSON snca writes begins its ``description`` member.
GEOJSON_MARKER = "snca_"
#: The head of a GeoJSON file as GDAL writes it, up to the start of snca's description.
_MARKED_HEAD = re.compile(
    r'\s*\{\s*"type"\s*:\s*"FeatureCollection"\s*,(\s*"name"\s*:\s*"(?:[^"\\]|\\.)*"\s*,)?'
    rf'\s*"description"\s*:\s*"{GEOJSON_MARKER}'
)
#: Bytes of a GeoJSON file read to find snca's description.
_HEAD_BYTES = 1 << 16


def box_rings(bounds: np.ndarray) -> np.ndarray:
    """Counter-clockwise closed rings (N x 5 x 2) of boxes ``(minx, miny, maxx, maxy)`` (N x 4)."""
    bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
    minx, miny, maxx, maxy = bounds.T
    xs = np.stack([minx, maxx, maxx, minx, minx], axis=1)
    ys = np.stack([miny, miny, maxy, maxy, miny], axis=1)
    return np.stack([xs, ys], axis=2)


#: Points per edge of a reprojected footprint: a straight edge in the raster's CRS is a curve in
#: another, so the edges are sampled before they are transformed.
DENSIFY_SEGMENTS = 16


def densify_rings(rings: np.ndarray, segments: int = DENSIFY_SEGMENTS) -> np.ndarray:
    """Closed rings (N x V x 2) with each edge split into ``segments`` equal parts:
    N x ((V - 1) * segments + 1) x 2, the original vertices kept exactly."""
    rings = np.asarray(rings, dtype=np.float64)
    start, end = rings[:, :-1], rings[:, 1:]
    steps = np.arange(segments, dtype=np.float64)[:, None] / segments
    points = start[:, :, None, :] + (end - start)[:, :, None, :] * steps  # N x E x S x 2
    dense = points.reshape(rings.shape[0], (rings.shape[1] - 1) * segments, 2)  # N may be 0
    return np.concatenate([dense, rings[:, :1]], axis=1)


def reproject_rings(
    rings: np.ndarray, src_crs: CRS | str, dst_crs: CRS | str = WGS84
) -> np.ndarray:
    """Rings (N x V x 2) with every vertex transformed from ``src_crs`` to ``dst_crs``.

    For EPSG:4326 the result is (longitude, latitude), the GeoJSON order.
    """
    rings = np.asarray(rings, dtype=np.float64)
    if rings.size == 0:
        return rings.copy()
    xs, ys = transform_coords(src_crs, dst_crs, rings[..., 0].ravel(), rings[..., 1].ravel())
    return np.stack([np.asarray(xs), np.asarray(ys)], axis=1).reshape(rings.shape)


def polygon_wkb(rings: np.ndarray) -> np.ndarray:
    """Little-endian WKB polygons (object array of bytes) for rings N x V x 2."""
    rings = np.asarray(rings, dtype=np.float64)
    count, vertices = rings.shape[0], rings.shape[1]
    record = np.dtype(
        [
            ("order", "u1"),
            ("type", "<u4"),
            ("rings", "<u4"),
            ("points", "<u4"),
            ("coords", "<f8", (vertices, 2)),
        ]
    )
    packed = np.empty(count, dtype=record)
    packed["order"] = 1
    packed["type"] = 3  # Polygon
    packed["rings"] = 1
    packed["points"] = vertices
    packed["coords"] = rings
    wkb = np.empty(count, dtype=object)
    wkb[:] = [row.tobytes() for row in packed]
    return wkb


def _columns(attributes: Mapping[str, Sequence | np.ndarray], count: int) -> list[np.ndarray]:
    columns = []
    for name, values in attributes.items():
        column = np.asarray(values)
        if column.dtype.kind in "US":
            column = column.astype(object)
        if column.shape != (count,):
            raise ValueError(f"attribute {name!r} has {column.shape} values for {count} polygons")
        columns.append(column)
    return columns


def write_polygons(
    path: Path,
    rings: np.ndarray,
    attributes: Mapping[str, Sequence | np.ndarray],
    crs: CRS | str,
    layer: str | None = None,
    driver: str | None = None,
    layer_options: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write one polygon layer with attribute columns.

    Args:
        path: the file to create (write to a temporary path and rename for atomicity).
        rings: closed rings, N x V x 2, in ``crs``.
        attributes: column name -> N values (ints, floats or strings), in column order.
        crs: the layer's CRS.
        layer: layer name (default: the file's stem).
        driver: OGR driver (default: from the suffix, see ``DRIVERS``).
        layer_options: OGR layer creation options.
        metadata: layer metadata items (a GeoPackage keeps them in ``gpkg_metadata``).

    A GeoPackage is created as version ``GPKG_VERSION``; writing to an existing one adds the
    layer (it keeps its version).
    """
    path = Path(path)
    rings = np.asarray(rings, dtype=np.float64)
    driver = driver or DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise SncaError(f"cannot tell the vector format of {path.name}; use .gpkg or .geojson")
    pyogrio.raw.write(
        str(path),
        geometry=polygon_wkb(rings),
        field_data=_columns(attributes, rings.shape[0]),
        fields=list(attributes),
        layer=layer or path.stem,
        driver=driver,
        geometry_type="Polygon",
        crs=CRS.from_user_input(crs).to_wkt(),
        dataset_options={"VERSION": GPKG_VERSION} if driver == "GPKG" else {},
        layer_options=dict(layer_options or {}),
        layer_metadata=dict(metadata) if metadata else None,
    )


def write_geojson_wgs84(
    path: Path,
    rings: np.ndarray,
    attributes: Mapping[str, Sequence | np.ndarray],
    crs: CRS | str,
    description: str,
    layer: str | None = None,
) -> None:
    """Write an RFC 7946 GeoJSON copy: rings densified (:func:`densify_rings`) and reprojected
    from ``crs`` to EPSG:4326 (lon, lat); ``description`` (``snca_<what>: <details>``, see
    :data:`GEOJSON_MARKER`) becomes the collection's ``description`` member."""
    options = {"RFC7946": "YES", "DESCRIPTION": description}
    write_polygons(
        path,
        reproject_rings(densify_rings(rings), crs, WGS84),
        attributes,
        WGS84,
        layer=layer,
        driver="GeoJSON",
        layer_options=options,
    )


def _geojson_mismatch(path: Path) -> str | None:
    """Why ``path`` is not a GeoJSON snca wrote (None when it is): GDAL's head of a feature
    collection whose ``description`` starts with :data:`GEOJSON_MARKER`."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        return f"cannot read it: {first_line(exc)}"
    if _MARKED_HEAD.match(head) is None:
        return "it has no snca description, and it was not named as an output"
    return None


#: A GeoJSON snca writes beside an output the user named (classify's and search's copy).
GEOJSON_OUTPUT = OwnOutput("a GeoJSON copy", _geojson_mismatch)
