"""How a raster is cut into tiles for a model: the options, their defaults and how users write them.

Conventions (also shown in ``snca classify --help`` and the plugin's tooltips):

* **Overlap**: a value >= 1 is pixels; a value in (0, 1) is a fraction of the tile
  (0.25 = 25 %); ``None`` (the default) is the model's ``tiles_overlap`` metadata. The stride is
  ``tile_size - overlap``. Every face (the CLI, the dock, the Processing algorithms) leaves it
  ``None`` unless the user chose one, so the same model tiles the same raster the same way.
* **Edges**: ``shift`` (default) moves the last tile of each row and column inward so it ends on
  the raster's edge: every pixel is covered and no tile reaches outside the raster. ``pad`` keeps
  the regular stride and lets the last tiles reach past the edge; the pixels outside the raster
  are no-data (they lower the tile's valid fraction).
* **Resolution**: ``auto`` uses the model's resolution when it has one, else the raster's;
  ``native`` never resamples; a number is metres per pixel.
* **Scaling**: see :mod:`snca_cli.contract.scaling`; ``stretch="auto"`` (default) chooses the
  model's ``input_scale`` or the percentile stretch per raster, ``"percentile"`` and ``"model"``
  force one.
* **Bands**: 1-based raster bands, in the order the model takes them; ``None`` takes the first
  ``input_bands``. Users write them ``3,2,1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from snca_cli.contract.metadata import ModelMetadata, check_resolution_m
from snca_cli.errors import SncaError

#: Tile size against which an overlap in pixels is checked before the model is known (the
#: model's tile size then checks it again).
_LARGEST_TILE = 1 << 16
#: Edge policies for the last row and column of tiles.
EDGE_POLICIES = ("shift", "pad")
#: Largest overlap, as a fraction of the tile: at 75 % every pixel is read 16 times; beyond it
#: the plan explodes (149 px on 150 px tiles: 22,500 reads per pixel, ~365,000 tiles for a
#: 1,000 x 1,000 px raster).
MAX_OVERLAP = 0.75
#: Value scalings (:mod:`snca_cli.contract.scaling`): ``auto`` (the default) chooses between the
#: model's ``input_scale`` and the percentile stretch per raster; ``model`` always takes the
#: model's ``input_scale`` (``None``, as indexes built before ``auto`` record it, means the same).
STRETCHES = ("auto", "percentile", "model")


@dataclass
class TilingOptions:
    """How a raster is cut into tiles and turned into model input.

    Attributes:
        overlap: overlap between neighbouring tiles: pixels when >= 1, a fraction of the tile
            when in (0, 1) (0.25 = 25 %), 0 for none; None for the model's ``tiles_overlap``
            (:meth:`for_model` fills it in).
        resolution: ``"auto"`` (the model's resolution when it has one, else native),
            ``"native"`` (never resample) or metres per pixel.
        bands: 1-based raster bands to feed the model, in order, e.g. ``(3, 2, 1)``; ``None``
            takes the first ``input_bands`` bands.
        min_valid: tiles with a smaller fraction of valid pixels are skipped (0..1).
        stretch: ``"auto"`` (default) chooses per raster (:func:`scaling.choose_scaling`);
            ``"model"`` (or ``None``) scales by the model's ``input_scale``; ``"percentile"``
            maps the 2..98 % percentiles of each band (sampled over the raster) to [0, 1].
        edge: ``"shift"`` moves edge tiles inward; ``"pad"`` lets them reach past the edge.
    """

    overlap: float | None = None
    resolution: str | float = "auto"
    bands: tuple[int, ...] | None = None
    min_valid: float = 0.5
    stretch: str | None = "auto"
    edge: str = "shift"

    def for_model(self, metadata: ModelMetadata) -> TilingOptions:
        """These options with the model's defaults filled in (the overlap, when None)."""
        if self.overlap is not None:
            return self
        return replace(self, overlap=model_overlap(metadata))

    def overlap_pixels(self, tile_size: int) -> int:
        """The overlap in pixels for tiles of ``tile_size``; raise SncaError when impossible.

        Only for options filled in by :meth:`for_model`.
        """
        if self.overlap is None:
            raise ValueError("overlap not resolved: call TilingOptions.for_model first")
        if not (math.isfinite(self.overlap) and self.overlap >= 0):
            raise SncaError(f"overlap must be pixels or a percentage (got {self.overlap})")
        pixels = round(self.overlap * tile_size) if self.overlap < 1 else round(self.overlap)
        limit = math.floor(MAX_OVERLAP * tile_size)
        if pixels > limit:
            stride = max(tile_size - pixels, 1)
            raise SncaError(
                f"overlap of {pixels} px on {tile_size} px tiles reads every pixel "
                f"{(tile_size / stride) ** 2:,.0f} times; use at most {limit} px "
                f"({MAX_OVERLAP:.0%})"
            )
        return pixels

    def check(self) -> None:
        """Raise SncaError for an option value outside its range."""
        if not 0.0 <= self.min_valid <= 1.0:
            raise SncaError(f"min-valid must be between 0 and 1 (got {self.min_valid})")
        if self.edge not in EDGE_POLICIES:
            raise SncaError(f"edge must be one of {', '.join(EDGE_POLICIES)} (got {self.edge!r})")
        if self.stretch is not None and self.stretch not in STRETCHES:
            raise SncaError(f"stretch must be one of {', '.join(STRETCHES)} (got {self.stretch!r})")
        if isinstance(self.resolution, str):
            if self.resolution not in ("auto", "native"):
                raise SncaError(
                    f"resolution must be auto, native or metres per pixel (got {self.resolution!r})"
                )
        else:
            check_resolution_m(self.resolution, "resolution")
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            raise SncaError(f"bands are numbered from 1 (got {self.bands})")
        if self.overlap is not None:
            self.overlap_pixels(_LARGEST_TILE if self.overlap >= 1 else 100)


def model_overlap(metadata: ModelMetadata) -> float:
    """The model's ``tiles_overlap`` metadata (percent) as an overlap fraction for tiling."""
    if not 0.0 <= metadata.tiles_overlap < 100.0:
        raise SncaError(
            f"the model's tiles_overlap of {metadata.tiles_overlap:g} % is not in 0..100 %; "
            "give --overlap"
        )
    return metadata.tiles_overlap / 100.0


def parse_overlap(text: str) -> float:
    """``"10%"`` -> 0.10 (fraction of the tile); ``"16"`` -> 16.0 (pixels); ``"0.25"`` -> 0.25."""
    value = text.strip()
    try:
        number = float(value[:-1] if value.endswith("%") else value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise SncaError(f"overlap must be pixels (16) or a percentage (10%), not {text!r}")
    if value.endswith("%"):
        fraction = number / 100.0
        if not 0 <= fraction <= MAX_OVERLAP:
            raise SncaError(f"overlap must be 0 to {MAX_OVERLAP:.0%} (got {text})")
        return fraction
    if number < 0:
        raise SncaError(f"overlap must not be negative (got {text})")
    return number


def parse_resolution(text: str) -> str | float:
    """``auto``, ``native`` or metres per pixel (``10`` or ``10m``)."""
    value = text.strip().lower()
    if value in ("auto", "native"):
        return value
    try:
        number = float(value.removesuffix("m"))
    except ValueError:
        number = math.nan
    if math.isfinite(number) and number > 0:
        return number
    raise SncaError(
        f"resolution must be auto, native or positive metres per pixel (10 or 10m), not {text!r}"
    )


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"3,2,1"`` -> (3, 2, 1); ``None`` or blank -> None (the model's first bands)."""
    if text is None or not text.strip():
        return None
    try:
        return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise SncaError(
            f"bands must be comma-separated band numbers like 3,2,1, not {text!r}"
        ) from None


def tiling_options(
    overlap: str | None = None,
    resolution: str = "auto",
    bands: str | None = None,
    min_valid: float = 0.5,
    stretch: str | None = "auto",
    edge: str = "shift",
) -> TilingOptions:
    """Checked tiling options from the values a user types (the CLI's options, the Processing
    algorithms' fields); ``overlap`` None keeps the model's."""
    options = TilingOptions(
        overlap=None if overlap is None else parse_overlap(overlap),
        resolution=parse_resolution(resolution),
        bands=parse_bands(bands),
        min_valid=min_valid,
        stretch=stretch,
        edge=edge,
    )
    options.check()
    return options
