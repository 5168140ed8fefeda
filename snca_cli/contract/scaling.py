"""How raw pixel values become model input in [0, 1]: the one rule for rasters, images and training.

* **By the model's ``input_scale``** (``stretch="model"``): values are divided by the model's
  divisor for their data type (``uint8`` / 255, ``uint16`` / 65535, ``float32`` / 1; any float
  type uses the ``float32`` entry) and clipped to [0, 1]. A type the model has no divisor for is
  refused with a hint to stretch.
* **By the percentile stretch** (``stretch="percentile"``): each band's 2nd..98th percentile
  (of the valid pixels sampled, :data:`STRETCH_SAMPLE_TILES` tiles spread over a raster, or the
  whole image) maps to [0, 1], clipped.
* **Automatically** (``stretch="auto"``, the default): the percentile stretch when the raw
  values are not display values for the model, i.e. when the bands carry a GDAL scale/offset
  (:func:`carries_gdal_scale`: physical quantities such as Sentinel-2 L2A or Landsat C2
  reflectance), when the model has no divisor for their type, when the sampled 2..98 % range
  spans less than :data:`AUTO_MIN_SPAN` of the divisor (Sentinel-2 uint16 reflectance x 10,000:
  about 2 % of 65,535) or when values reach beyond it (floats above 1); otherwise the model's
  input_scale. The percentiles are computed once per raster (or image) from the same sample.

:func:`choose_scaling` is the one place these choices are made, for a raster and for an image
alike. Whatever was chosen is recorded (:meth:`ValueScaling.record`: the method, why, the raw
values mapped to 0 and 1 and their data type) in the outputs and said in one line;
:meth:`ValueScaling.from_record` rebuilds it.

**A query image compared with an index** (:func:`query_scaling`) is scaled like the index's
rasters, not by a choice of its own, so the exact pixels of an indexed tile find that tile:

1. When every raster of the index recorded the model's input_scale, the query is divided by the
   model's divisor for its own data type (an 8-bit PNG query of a uint16 index is divided by
   255).
2. When every raster recorded the same percentile stretch (one raster, or rasters stretched
   alike), the query's raw values are stretched by exactly those recorded low/high values, if
   they are of the rasters' data type (or the record does not name one); a query of another
   type gets its own percentile stretch.
3. When the rasters were percentile-stretched each by its own range, the query gets its own
   percentile stretch: the method they share, on the query's values.
4. Otherwise (the rasters recorded different methods, an index written before scalings were
   recorded, or a query type the model has no divisor for) the query gets the index's
   ``stretch`` applied to its own pixels, as a raster would (:func:`choose_scaling`).

Tiled rasters (:mod:`snca_cli.runtime.raster_tiles`), query and evaluation images
(:mod:`snca_cli.runtime.image_input`) and training images (:mod:`snca_train.training_data`) all
call these functions, so a model sees the same numbers however its input arrives. Model input
becomes 8-bit again only through :func:`to_uint8` (``snca chips``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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
#: The stretches (``TilingOptions.stretch``) that scale by the model's input_scale alone.
MODEL_STRETCHES = (None, "model")
#: The largest 8-bit value: model input 1.0 as 8-bit (:func:`to_uint8`).
UINT8_MAX = 255


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


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """Model input in [0, 1] (any layout) as 8-bit values: 0..1 -> 0..255, rounded and clipped,
    so the model's uint8 input_scale reads them back to within half a grey level."""
    return np.clip(np.rint(unit * float(UINT8_MAX)), 0, UINT8_MAX).astype(np.uint8)


def carries_gdal_scale(scales: Sequence[float | None], offsets: Sequence[float | None]) -> bool:
    """Whether bands with these GDAL scales and offsets (None: unset) hold physical values
    (a scale other than 1 or an offset other than 0), not display values."""
    return any(
        (scale or 1.0) != 1.0 or (offset or 0.0) != 0.0
        for scale, offset in zip(scales, offsets, strict=True)
    )


@dataclass(frozen=True)
class ValueScaling:
    """``(raw - offset) / divisor`` per band, clipped to [0, 1] when it could leave that range.

    Attributes:
        offset: per-band offset (bands x 1 x 1), or None for 0.
        divisor: per-band divisor (bands x 1 x 1).
        clips: False only where the result cannot leave [0, 1] (unsigned integers divided by at
            least their maximum), to save the pass.
        method: :data:`BY_INPUT_SCALE` or :data:`BY_PERCENTILES`.
        reason: why it was chosen ("" when not said).
        dtype: the name of the raw values' data type ("" when unknown: records of older outputs).
    """

    offset: np.ndarray | None
    divisor: np.ndarray
    clips: bool
    method: str = BY_INPUT_SCALE
    reason: str = ""
    dtype: str = ""

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
        """What the outputs record: the method, why, the raw values mapped to 0 and 1 and
        their data type."""
        return {
            "method": self.method,
            "reason": self.reason,
            "low": self.low,
            "high": self.high,
            "dtype": self.dtype,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> ValueScaling:
        """The scaling a :meth:`record` describes: it scales raw values exactly as the
        recorded one did (it clips always: the values are the same, the pass is not saved)."""
        low = np.asarray(record["low"], np.float64)
        divisor = (np.asarray(record["high"], np.float64) - low).astype(np.float32)
        offset = low.astype(np.float32)[:, None, None] if np.any(low) else None
        return cls(
            offset,
            divisor[:, None, None],
            True,
            str(record["method"]),
            str(record.get("reason", "")),
            str(record.get("dtype", "")),
        )

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
    divisors = np.full((bands, 1, 1), divisor, np.float32)
    return ValueScaling(None, divisors, clips, BY_INPUT_SCALE, reason, dtype.name)


def percentile_scaling(values: np.ndarray, dtype: np.dtype, reason: str = "") -> ValueScaling:
    """The percentile stretch of sampled ``values`` (bands x N valid pixels) of ``dtype``."""
    low, high = sample_percentiles(values)
    low, high = low.astype(np.float32), high.astype(np.float32)
    divisor = np.maximum(high - low, 1e-12)[:, None, None]
    return ValueScaling(
        low[:, None, None], divisor, True, BY_PERCENTILES, reason, np.dtype(dtype).name
    )


def sample_percentiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the :data:`STRETCH_PERCENTILES` of ``values`` (bands x N) as float64."""
    low, high = np.percentile(np.asarray(values, np.float64), STRETCH_PERCENTILES, axis=1)
    return low, high


def needs_sample(stretch: str | None) -> bool:
    """Whether :func:`choose_scaling` looks at sampled values for ``stretch``: for every
    stretch but the model's input_scale."""
    return stretch not in MODEL_STRETCHES


def choose_scaling(
    stretch: str | None,
    sample: np.ndarray | None,
    dtype: np.dtype,
    input_scale: Mapping[str, float],
    bands: int,
    gdal_scaled: bool = False,
    source: str = "the image",
) -> ValueScaling:
    """The scaling of ``bands`` bands of ``dtype`` by the rule of ``stretch`` (module
    docstring): the one choice for rasters and images.

    Args:
        stretch: ``None`` or ``"model"``, ``"percentile"`` or ``"auto"``.
        sample: the valid raw values sampled (bands x N); None when no pixel is valid (or
            not sampled: :func:`needs_sample` says when it is not looked at).
        dtype: the raw values' data type.
        input_scale: the model's divisors per data type.
        bands: how many bands are scaled.
        gdal_scaled: the bands carry a GDAL scale/offset (:func:`carries_gdal_scale`).
        source: what the values are, for the error when nothing can be stretched (e.g.
            ``"raster a.tif"``).
    """
    if not needs_sample(stretch):
        return input_scaling(dtype, input_scale, bands, "chosen")
    if stretch == "percentile":
        if sample is None:
            raise SncaError(f"{source} has no valid pixels to stretch")
        return percentile_scaling(sample, dtype, "chosen")
    if sample is None:
        return input_scaling(dtype, input_scale, bands, "no valid pixels sampled")
    return _auto_scaling(sample, dtype, input_scale, gdal_scaled)


def _auto_scaling(
    values: np.ndarray,
    dtype: np.dtype,
    input_scale: Mapping[str, float],
    gdal_scaled: bool,
) -> ValueScaling:
    """The ``auto`` rule (module docstring) for values of ``dtype`` whose sampled valid values
    are ``values`` (bands x N); ``gdal_scaled``: their bands carry a GDAL scale/offset."""
    dtype = np.dtype(dtype)
    bands = len(values)
    if gdal_scaled:
        return percentile_scaling(
            values, dtype, "the bands carry a GDAL scale/offset: physical values"
        )
    try:
        divisor = input_divisor(dtype, input_scale)
    except SncaError:
        return percentile_scaling(values, dtype, f"the model has no input_scale for {dtype.name}")
    low, high = sample_percentiles(values)
    span = float(np.max(high - low)) / divisor
    top = float(np.max(high)) / divisor
    if span <= 0.0:
        return input_scaling(
            dtype, input_scale, bands, f"constant values ({float(low[0]):g}): no range to stretch"
        )
    if top > 1.0:
        return percentile_scaling(
            values, dtype, f"values reach {top:.3g} x the model's {dtype.name} divisor {divisor:g}"
        )
    used = f"values use {span:.0%} of the model's {dtype.name} range 0..{divisor:g}"
    if span < AUTO_MIN_SPAN:
        return percentile_scaling(values, dtype, used)
    return input_scaling(dtype, input_scale, bands, used)


def query_scaling(
    index_scalings: Sequence[Mapping[str, object]],
    stretch: str | None,
    sample: np.ndarray,
    dtype: np.dtype,
    input_scale: Mapping[str, float],
    gdal_scaled: bool = False,
) -> ValueScaling:
    """How a query image is scaled to be compared with an index's tiles (module docstring):
    like the index's rasters, whose scalings are ``index_scalings`` (each raster's
    :meth:`ValueScaling.record`; empty in indexes written before they were recorded) and which
    were tiled with ``stretch``.

    Args:
        index_scalings: the records of the index's rasters.
        stretch: the index's ``TilingOptions.stretch``, for the query's own choice.
        sample: every raw value of the query (bands x N).
        dtype: the query's data type.
        input_scale: the model's divisors per data type.
        gdal_scaled: the query's bands carry a GDAL scale/offset (for its own choice).
    """
    dtype = np.dtype(dtype)
    bands = len(sample)
    recorded = bool(index_scalings) and all(index_scalings)
    methods = {record.get("method") for record in index_scalings}
    if recorded and methods == {BY_INPUT_SCALE} and _has_divisor(dtype, input_scale):
        return input_scaling(dtype, input_scale, bands, "as the index's rasters")
    if recorded and methods == {BY_PERCENTILES}:
        return _percentiles_like(index_scalings, sample, dtype)
    return choose_scaling(stretch, sample, dtype, input_scale, bands, gdal_scaled)


def _has_divisor(dtype: np.dtype, input_scale: Mapping[str, float]) -> bool:
    """Whether the model has a divisor for values of ``dtype``."""
    try:
        input_divisor(dtype, input_scale)
    except SncaError:
        return False
    return True


def _percentiles_like(
    index_scalings: Sequence[Mapping[str, object]], sample: np.ndarray, dtype: np.dtype
) -> ValueScaling:
    """A query's percentile stretch when the index's rasters were all percentile-stretched:
    their one recorded stretch when they share it and the query's values are of their type,
    else the query's own (``sample``: its values, bands x N)."""
    first = index_scalings[0]
    if any((r["low"], r["high"]) != (first["low"], first["high"]) for r in index_scalings):
        return percentile_scaling(
            sample, dtype, "the index's rasters were each stretched by their own range"
        )
    recorded = ValueScaling.from_record(first)
    if recorded.dtype not in ("", dtype.name):
        reason = f"the index's rasters hold {recorded.dtype} values, the query {dtype.name}"
        return percentile_scaling(sample, dtype, reason)
    return replace(recorded, reason="as the index's rasters", dtype=dtype.name)
