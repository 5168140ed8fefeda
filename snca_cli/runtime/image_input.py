"""Image files (JPEG, PNG, GeoTIFF) as model input: read, resized to the model's tile, scaled.

Used for ``snca search --image`` queries and for the scene images ``snca evaluate`` embeds;
scaling follows :mod:`snca_cli.contract.scaling`, as for tiles cut from rasters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from snca_cli.contract.scaling import auto_scaling, input_scaling, percentile_scaling
from snca_cli.errors import SncaError, check_utf8_path
from snca_cli.runtime.paths import is_remote
from snca_cli.runtime.scene_images import read_image, resize_image


def image_as_model_input(
    path: Path | str,
    *,
    size: int,
    input_bands: int,
    input_scale: Mapping[str, float],
    bands: tuple[int, ...] | None = None,
    stretch: str | None = None,
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
    """
    path = Path(path)
    check_utf8_path(path, "image")
    if not is_remote(path) and not path.is_file():
        raise SncaError(f"image {path} does not exist")
    image = read_image(path)
    if bands is not None and (is_remote(path) or path.suffix.lower() in (".tif", ".tiff")):
        if max(bands) > image.shape[2]:
            raise SncaError(
                f"image {path.name} has {image.shape[2]} band(s); the index reads bands "
                f"{', '.join(map(str, bands))}"
            )
        image = image[..., [b - 1 for b in bands]]
    if image.shape[2] != input_bands:
        raise SncaError(
            f"image {path.name} has {image.shape[2]} band(s); the model takes {input_bands}"
        )
    image = _fill_non_finite(image, path)
    pixels = np.moveaxis(resize_image(image, size), -1, 0)
    values = pixels.reshape(len(pixels), -1)
    if stretch == "percentile":
        scaling = percentile_scaling(values)
    elif stretch == "auto":
        scaling = auto_scaling(values, pixels.dtype, input_scale)
    else:
        scaling = input_scaling(pixels.dtype, input_scale, len(pixels))
    return scaling(pixels)


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
