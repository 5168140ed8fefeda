"""How raw pixel values become model input in [0, 1]: the one rule for rasters, images and training.

* **By the model's ``input_scale``** (``stretch="model"``): values are divided by the model's
  divisor for their data type (``uint8`` / 255, ``uint16`` / 65535, ``float32`` / 1; any float
  type uses the ``float32`` entry) and clipped to [0, 1]. A type the model has no divisor for is
  refused with a hint to stretch.
* **By the percentile stretch** (``stretch="percentile"``): each band's 2nd..98th percentile
  (of the valid pixels sampled, :data:`STRETCH_SAMPLE_TILES` tiles spread over a raster, or the
  whole image) maps to [0, 1], clipped.
* **Automatically** (``stretch="auto"``, the default; :func:`auto_scaling`): the percentile
  stretch when the raw values are not display values for the model, i.e. when the bands carry
  a GDAL scale/offset (physical quantities such as Sentinel-2 L2A or Landsat C2 reflectance),
  when the model has no divisor for their type, when the sampled 2..98 % range spans less than
  :data:`AUTO_MIN_SPAN` of the divisor (Sentinel-2 uint16 reflectance x 10,000: about 2 % of
  65,535) or when values reach beyond it (floats above 1); otherwise the model's input_scale.
  The percentiles are computed once per raster (or image) from the same sample. Whatever was
  chosen is recorded (:meth:`ValueScaling.record`) in the outputs and said in one line.

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
#: ``auto`` stretches values whose 2..98 % range spans less than this fraction of the model's
#: divisor for their type (the model would see them nearly black or nearly flat).
AUTO_MIN_SPAN = 0.25
#: The scaling methods a ValueScaling records.
BY_INPUT_SCALE, BY_PERCENTILES = "input_scale", "percentile"


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
    method: str = BY_INPUT_SCALE
    reason: str = ""

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

    @property
    def low(self) -> list[float]:
        """Per band, the raw value that becomes 0."""
        offset = np.zeros_like(self.divisor) if self.offset is None else self.offset
        return [float(v) for v in offset.reshape(-1)]

    @property
    def high(self) -> list[float]:
        """Per band, the raw value that becomes 1."""
        return [low + float(d) for low, d in zip(self.low, self.divisor.reshape(-1), strict=True)]

    def record(self) -> dict[str, object]:
        """What the outputs record: the method, why, and the raw values mapped to 0 and 1."""
        return {"method": self.method, "reason": self.reason, "low": self.low, "high": self.high}

    def describe(self) -> str:
        """One line for users, e.g. ``percentile stretch, raw 412..1480 / 380..1390 -> 0..1
        (values use 2 % of the uint16 range)``."""
        ranges = " / ".join(f"{lo:g}..{hi:g}" for lo, hi in zip(self.low, self.high, strict=True))
        name = "percentile stretch" if self.method == BY_PERCENTILES else "the model's input_scale"
        return f"{name}, raw {ranges} -> 0..1" + (f" ({self.reason})" if self.reason else "")


def input_scaling(
    dtype: np.dtype, input_scale: Mapping[str, float], bands: int, reason: str = ""
) -> ValueScaling:
    """Scaling by the model's ``input_scale`` for ``bands`` bands of ``dtype``."""
    dtype = np.dtype(dtype)
    divisor = input_divisor(dtype, input_scale)
    clips = not (dtype.kind == "u" and divisor >= np.iinfo(dtype).max)
    return ValueScaling(None, np.full((bands, 1, 1), divisor, np.float32), clips, reason=reason)


def percentile_scaling(values: np.ndarray, reason: str = "") -> ValueScaling:
    """The percentile stretch of sampled ``values`` (bands x N valid pixels)."""
    low, high = sample_percentiles(values)
    low, high = low.astype(np.float32), high.astype(np.float32)
    divisor = np.maximum(high - low, 1e-12)[:, None, None]
    return ValueScaling(low[:, None, None], divisor, True, BY_PERCENTILES, reason)


def sample_percentiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the :data:`STRETCH_PERCENTILES` of ``values`` (bands x N) as float64."""
    low, high = np.percentile(np.asarray(values, np.float64), STRETCH_PERCENTILES, axis=1)
    return low, high


def auto_scaling(
    values: np.ndarray,
    dtype: np.dtype,
    input_scale: Mapping[str, float],
    gdal_scaled: bool = False,
) -> ValueScaling:
    """The ``auto`` rule (module docstring) for a raster or image of ``dtype`` whose sampled
    valid values are ``values`` (bands x N); ``gdal_scaled``: its bands carry a GDAL
    scale/offset."""
    dtype = np.dtype(dtype)
    bands = len(values)
    if gdal_scaled:
        return percentile_scaling(values, "the bands carry a GDAL scale/offset: physical values")
    try:
        divisor = input_divisor(dtype, input_scale)
    except SncaError:
        return percentile_scaling(values, f"the model has no input_scale for {dtype.name}")
    low, high = sample_percentiles(values)
    span = float(np.max(high - low)) / divisor
    top = float(np.max(high)) / divisor
    if span <= 0.0:
        return input_scaling(
            dtype, input_scale, bands, f"constant values ({float(low[0]):g}): no range to stretch"
        )
    if top > 1.0:
        return percentile_scaling(
            values, f"values reach {top:.3g} x the model's {dtype.name} divisor {divisor:g}"
        )
    used = f"values use {span:.0%} of the model's {dtype.name} range 0..{divisor:g}"
    if span < AUTO_MIN_SPAN:
        return percentile_scaling(values, used)
    return input_scaling(dtype, input_scale, bands, used)
