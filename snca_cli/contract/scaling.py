"""How raw pixel values become model input in [0, 1]: the one rule for rasters, images and training.

* **By the model's ``input_scale``** (default): values are divided by the model's divisor for
  their data type (``uint8`` / 255, ``uint16`` / 65535, ``float32`` / 1; any float type uses the
  ``float32`` entry) and clipped to [0, 1]. A type the model has no divisor for is refused with
  a hint to stretch.
* **By the percentile stretch** (``stretch="percentile"``): each band's 2nd..98th percentile
  (of the valid pixels sampled, :data:`STRETCH_SAMPLE_TILES` tiles spread over a raster, or the
  whole image) maps to [0, 1], clipped.

Tiled rasters (:mod:`snca_cli.runtime.raster_tiles`), query and evaluation images
(:mod:`snca_cli.runtime.image_input`) and training images (:mod:`snca_train.training_data`) all
call these functions, so a model sees the same numbers however its input arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from snca_cli.errors import SncaError

#: Percentiles mapped to 0 and 1 by the percentile stretch.
STRETCH_PERCENTILES = (2.0, 98.0)
#: How many tiles, spread over the raster, the percentile stretch samples.
STRETCH_SAMPLE_TILES = 64


def input_divisor(dtype: np.dtype, input_scale: Mapping[str, float]) -> float:
    """What values of ``dtype`` are divided by; raise SncaError when the model has no divisor."""
    dtype = np.dtype(dtype)
    divisor = input_scale.get(dtype.name)
    if divisor is None and dtype.kind == "f":
        divisor = input_scale.get("float32")
    if divisor is None:
        raise SncaError(
            f"the model has no input_scale for {dtype.name} values "
            f"(it knows {', '.join(input_scale)}); use the percentile stretch (--stretch "
            "percentile of classify and index build; an index keeps the stretch it was built with)"
        )
    return float(divisor)


def values_to_unit(values: np.ndarray, input_scale: Mapping[str, float]) -> np.ndarray:
    """``values`` (any layout) divided by their type's divisor and clipped: float32 in [0, 1]."""
    unit = np.asarray(values, np.float32) / np.float32(input_divisor(values.dtype, input_scale))
    return np.clip(unit, 0.0, 1.0, out=unit)


@dataclass(frozen=True)
class ValueScaling:
    """``(raw - offset) / divisor`` per band, clipped to [0, 1] when it could leave that range.

    Attributes:
        offset: per-band offset (bands x 1 x 1), or None for 0.
        divisor: per-band divisor (bands x 1 x 1).
        clips: False only where the result cannot leave [0, 1] (unsigned integers divided by at
            least their maximum), to save the pass.
    """

    offset: np.ndarray | None
    divisor: np.ndarray
    clips: bool

    def apply(self, raw: np.ndarray, out: np.ndarray) -> None:
        """Scale ``raw`` (bands x ...) into the float32 array ``out`` of the same shape."""
        if self.offset is None:
            np.divide(raw, self.divisor, out=out, casting="unsafe")
        else:
            np.subtract(raw, self.offset, out=out, casting="unsafe")
            np.divide(out, self.divisor, out=out)
        if self.clips:
            np.clip(out, 0.0, 1.0, out=out)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` (bands x H x W) scaled into a new float32 array."""
        out = np.empty(raw.shape, np.float32)
        self.apply(raw, out)
        return out


def input_scaling(dtype: np.dtype, input_scale: Mapping[str, float], bands: int) -> ValueScaling:
    """Scaling by the model's ``input_scale`` for ``bands`` bands of ``dtype``."""
    dtype = np.dtype(dtype)
    divisor = input_divisor(dtype, input_scale)
    clips = not (dtype.kind == "u" and divisor >= np.iinfo(dtype).max)
    return ValueScaling(None, np.full((bands, 1, 1), divisor, np.float32), clips)


def percentile_scaling(values: np.ndarray) -> ValueScaling:
    """The percentile stretch of sampled ``values`` (bands x N valid pixels)."""
    low, high = np.percentile(np.asarray(values, np.float64), STRETCH_PERCENTILES, axis=1)
    low, high = low.astype(np.float32), high.astype(np.float32)
    return ValueScaling(low[:, None, None], np.maximum(high - low, 1e-12)[:, None, None], True)
