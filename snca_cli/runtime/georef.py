"""Ground resolution in a raster's CRS, and the resampled view of a raster at a target resolution.

A raster is resampled when its resolution differs from the target by more than 1 %: ``average``
when coarsening, ``bilinear`` when refining, through a :class:`rasterio.vrt.WarpedVRT` in the
raster's own CRS. For a geographic CRS the metres are converted to degrees at the raster's centre
latitude on the WGS84 ellipsoid, so tiles are square on the ground at that latitude.
"""

from __future__ import annotations

import math
from pathlib import Path

import rasterio
import rasterio.errors
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from snca_cli.contract.metadata import ModelMetadata
from snca_cli.contract.resolution import resolution_warning
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.paths import gdal_path

#: Relative resolution difference under which a raster is read without resampling.
RESOLUTION_TOLERANCE = 0.01
#: Most a raster is refined per side (16x: 256x the pixels and tiles): beyond it the target
#: resolution is a mistake (a model exported for cm, a unit mix-up), not a choice.
MAX_REFINEMENT = 16.0

# WGS84 ellipsoid, for metres per degree at a latitude.
_WGS84_A = 6378137.0
_WGS84_E2 = 6.69437999014e-3


def metres_per_degree(latitude: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``latitude`` on the WGS84 ellipsoid."""
    phi = math.radians(latitude)
    w = math.sqrt(1.0 - _WGS84_E2 * math.sin(phi) ** 2)
    per_lon = math.pi / 180.0 * _WGS84_A * math.cos(phi) / w
    per_lat = math.pi / 180.0 * _WGS84_A * (1.0 - _WGS84_E2) / w**3
    return per_lon, per_lat


def target_resolution_m(metadata: ModelMetadata, options: TilingOptions) -> float | None:
    """Metres per pixel to resample to, or None to keep the raster's grid."""
    if options.resolution == "native":
        return None
    if options.resolution == "auto":
        return metadata.resolution_m
    return float(options.resolution)


def resolution_in_crs_units(
    crs: rasterio.crs.CRS, metres: float, centre_latitude: float
) -> tuple[float, float]:
    """``metres`` as x and y pixel sizes in the units of ``crs``.

    Projected CRS: divided by the CRS's linear unit in metres. Geographic CRS: degrees of
    longitude and latitude at ``centre_latitude`` (WGS84 ellipsoid).
    """
    if crs.is_geographic:
        per_lon, per_lat = metres_per_degree(centre_latitude)
        return metres / per_lon, metres / per_lat
    _, unit_metres = crs.linear_units_factor
    return metres / unit_metres, metres / unit_metres


def resampled_view(
    source: rasterio.io.DatasetReader, target_m: float | None
) -> rasterio.io.DatasetReader | WarpedVRT:
    """The source itself, or a WarpedVRT of it at ``target_m`` metres per pixel in its CRS;
    SncaError when that refines the raster more than :data:`MAX_REFINEMENT` times per side."""
    if target_m is None:
        return source
    left, bottom, right, top = source.bounds
    res_x, res_y = resolution_in_crs_units(source.crs, target_m, (bottom + top) / 2.0)
    native_x, native_y = source.res
    if (
        abs(native_x - res_x) <= RESOLUTION_TOLERANCE * res_x
        and abs(native_y - res_y) <= RESOLUTION_TOLERANCE * res_y
    ):
        return source
    width = max(1, round((right - left) / res_x))
    height = max(1, round((top - bottom) / res_y))
    refinement = max(native_x / res_x, native_y / res_y)
    if refinement > MAX_REFINEMENT:
        raise SncaError(
            f"{Path(source.name).name} has {raster_pixel_size_m(source):g} m pixels: resampling "
            f"to {target_m:g} m/px would enlarge it {refinement:.0f}x per side ({width} x "
            f"{height} px); use the raster's own pixels (--resolution native) or a coarser "
            "--resolution"
        )
    coarser = res_x > native_x
    options = {}
    if source.nodata is None and rasterio.enums.ColorInterp.alpha not in source.colorinterp:
        # without it the VRT drops a mask band and calls pixels outside the source valid;
        # a no-data value or an alpha band carries over by itself
        options["add_alpha"] = True
    return WarpedVRT(
        source,
        crs=source.crs,
        transform=Affine(res_x, 0.0, left, 0.0, -res_y, top),
        width=width,
        height=height,
        resampling=Resampling.average if coarser else Resampling.bilinear,
        **options,
    )


def raster_pixel_size_m(raster: rasterio.io.DatasetReader) -> float:
    """The mean of a raster's x and y pixel sizes in metres (geographic CRS: at its centre)."""
    x_size, y_size = abs(raster.transform.a), abs(raster.transform.e)
    if raster.crs is None:
        return (x_size + y_size) / 2
    if raster.crs.is_geographic:
        bounds = raster.bounds
        per_lon, per_lat = metres_per_degree((bounds.bottom + bounds.top) / 2)
        return (x_size * per_lon + y_size * per_lat) / 2
    _, unit_metres = raster.crs.linear_units_factor
    return (x_size + y_size) / 2 * unit_metres


def raster_resolution_warning(
    raster: Path | str, metadata: ModelMetadata, options: TilingOptions
) -> str | None:
    """The resolution warning (:func:`snca_cli.contract.resolution.resolution_warning`) for the
    pixels the model sees of ``raster``: the target resolution when it is resampled, else its own.
    A raster that cannot be opened gets none here (the task reports it)."""
    try:
        with rasterio.open(gdal_path(raster)) as source:
            return dataset_resolution_warning(source, metadata, options)
    except (rasterio.errors.RasterioError, OSError):
        return None


def dataset_resolution_warning(
    source: rasterio.io.DatasetReader, metadata: ModelMetadata, options: TilingOptions
) -> str | None:
    """:func:`raster_resolution_warning` of an open raster."""
    target = target_resolution_m(metadata, options)
    if target is None:
        target = raster_pixel_size_m(source)
    return resolution_warning(metadata, target)
