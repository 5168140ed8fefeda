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
* **Scaling**: see :mod:`snca_cli.contract.scaling`; ``stretch="percentile"`` replaces the
  model's ``input_scale``.
* **Bands**: 1-based raster bands, in the order the model takes them; ``None`` takes the first
  ``input_bands``. Users write them ``3,2,1``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from snca_cli.contract.metadata import ModelMetadata
from snca_cli.errors import SncaError

#: Edge policies for the last row and column of tiles.
EDGE_POLICIES = ("shift", "pad")
#: Stretches that replace the model's ``input_scale``.
STRETCHES = ("percentile",)


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
        stretch: ``None`` scales by the model's ``input_scale``; ``"percentile"`` maps the
            2..98 % percentiles of each band (sampled over the raster) to [0, 1].
        edge: ``"shift"`` moves edge tiles inward; ``"pad"`` lets them reach past the edge.
    """

    overlap: float | None = None
    resolution: str | float = "auto"
    bands: tuple[int, ...] | None = None
    min_valid: float = 0.5
    stretch: str | None = None
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
        if self.overlap < 0:
            raise SncaError(f"overlap must not be negative (got {self.overlap})")
        pixels = round(self.overlap * tile_size) if self.overlap < 1 else round(self.overlap)
        if pixels >= tile_size:
            raise SncaError(
                f"overlap of {pixels} px leaves no stride for {tile_size} px tiles; "
                f"use less than {tile_size} px or 100 %"
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
        elif not self.resolution > 0:
            raise SncaError(f"resolution must be positive (got {self.resolution})")
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            raise SncaError(f"bands are numbered from 1 (got {self.bands})")



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
        if value.endswith("%"):
            fraction = float(value[:-1]) / 100.0
            if not 0 <= fraction < 1:
                raise SncaError(f"overlap must be under 100 % (got {text})")
            return fraction
        return float(value)
    except ValueError:
        raise SncaError(
            f"overlap must be pixels (16) or a percentage (10%), not {text!r}"
        ) from None


def parse_resolution(text: str) -> str | float:
    """``auto``, ``native`` or metres per pixel (``10`` or ``10m``)."""
    value = text.strip().lower()
    if value in ("auto", "native"):
        return value
    try:
        return float(value.removesuffix("m"))
    except ValueError:
        raise SncaError(
            f"resolution must be auto, native or metres per pixel (10 or 10m), not {text!r}"
        ) from None


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
    stretch: str | None = None,
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
