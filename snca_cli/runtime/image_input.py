"""Image files (JPEG, PNG, GeoTIFF) as model input: read, resized to the model's tile, scaled.

Used for ``snca search --image`` queries and for the scene images ``snca evaluate`` embeds;
scaling follows :mod:`snca_cli.contract.scaling`, as for tiles cut from rasters: a query is
scaled like the index's rasters (:func:`snca_cli.contract.scaling.query_scaling`), any other
image by its own choice (:func:`snca_cli.contract.scaling.choose_scaling`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio

from snca_cli.contract.scaling import (
    ValueScaling,
    carries_gdal_scale,
    choose_scaling,
    needs_sample,
    query_scaling,
)
from snca_cli.errors import SncaError, check_utf8_path
from snca_cli.runtime.paths import gdal_path, is_remote
from snca_cli.runtime.scene_images import read_image, reads_with_gdal, resize_image


def image_as_model_input(
    path: Path | str,
    *,
    size: int,
    input_bands: int,
    input_scale: Mapping[str, float],
    bands: tuple[int, ...] | None = None,
    stretch: str | None = None,
    index_scalings: Sequence[Mapping[str, object]] | None = None,
) -> np.ndarray:
    """An image file as one model input: bands x size x size float32 in [0, 1].

    Args:
        path: the image; a missing or unreadable file raises SncaError.
        size: the model's tile size (the image is resized to it, antialiased bilinear).
        input_bands: the bands the model takes.
        input_scale: the model's divisors per data type.
        bands: 1-based bands to take from a GeoTIFF (an index's band choice); JPEG/PNG images
            are used as they are.
        stretch: ``None`` or ``"model"`` (default: as training images are scaled), ``"auto"``
            or ``"percentile"``, as for rasters (:mod:`snca_cli.contract.scaling`); the image
            is the sample.
        index_scalings: for a query compared with an index, the scalings its rasters recorded
            (``IndexedRaster.scaling``; ``stretch`` is then the index's): the image is scaled
            like them (:func:`snca_cli.contract.scaling.query_scaling`).
    """
    path = Path(path)
    check_utf8_path(path, "image")
    if not is_remote(path) and not path.is_file():
        raise SncaError(f"image {path} does not exist")
    image = read_image(path)
    if bands is not None and reads_with_gdal(path):
        if max(bands) > image.shape[2]:
            raise SncaError(
                f"image {path.name} has {image.shape[2]} band(s); the index reads bands "
                f"{', '.join(map(str, bands))}"
            )
        image = image[..., [b - 1 for b in bands]]
    else:
        bands = tuple(range(1, image.shape[2] + 1))
    if image.shape[2] != input_bands:
        raise SncaError(
            f"image {path.name} has {image.shape[2]} band(s); the model takes {input_bands}"
        )
    image = _fill_non_finite(image, path)
    pixels = np.moveaxis(resize_image(image, size), -1, 0)
    return _scaling(path, bands, pixels, input_scale, stretch, index_scalings)(pixels)


def _scaling(
    path: Path,
    bands: tuple[int, ...],
    pixels: np.ndarray,
    input_scale: Mapping[str, float],
    stretch: str | None,
    index_scalings: Sequence[Mapping[str, object]] | None,
) -> ValueScaling:
    """The scaling of the image's ``pixels`` (bands x S x S, raw; ``bands``: the image's bands
    they are): like an index's rasters, or the image's own choice."""
    values = pixels.reshape(len(pixels), -1)
    gdal_scaled = needs_sample(stretch) and _carries_gdal_scale(path, bands)
    if index_scalings is not None:
        return query_scaling(
            index_scalings, stretch, values, pixels.dtype, input_scale, gdal_scaled
        )
    return choose_scaling(
        stretch, values, pixels.dtype, input_scale, len(pixels), gdal_scaled, f"image {path.name}"
    )


def _carries_gdal_scale(path: Path, bands: tuple[int, ...]) -> bool:
    """Whether ``bands`` of the image carry a GDAL scale/offset (never for JPEG/PNG)."""
    if not reads_with_gdal(path):
        return False
    with rasterio.open(gdal_path(path)) as src:
        return carries_gdal_scale(
            [src.scales[band - 1] for band in bands], [src.offsets[band - 1] for band in bands]
        )


def _fill_non_finite(image: np.ndarray, path: Path) -> np.ndarray:
    """A float image (H x W x bands) with its NaN and infinite pixels (no-data, as in rasters)
    given each band's mean finite value; SncaError when no pixel is finite in every band."""
    if image.dtype.kind not in "fc":
        return image
    finite = np.isfinite(image).all(axis=2)
    if finite.all():
        return image
    if not finite.any():
        raise SncaError(f"image {path.name} has no valid pixels (all NaN or infinite)")
    filled = image.copy()
    filled[~finite] = image[finite].mean(axis=0, dtype=np.float64).astype(image.dtype)
    return filled
