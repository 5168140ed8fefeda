"""The ONNX model contract shared by ``snca export``, the runtime and the QGIS plugin.

An snca model is one ONNX file with

* input ``image``: float32, N x bands x H x W, values in [0, 1] (normalisation is inside the graph);
* outputs ``embedding`` (N x D, unit length) first, then ``probabilities`` (N x C, softmax);
* JSON-encoded ``metadata_props``. The keys Deepness and GeoDeep read (``model_type``,
  ``class_names`` as a dict with consecutive integer keys, ``resolution`` in cm/px (left out when
  unknown), ``tile_size``/``tiles_size``, ``tiles_overlap`` in percent,
  ``standardization_mean``/``standardization_std``) so those tools can load our models, and ours
  (``embedding_dim``, ``input_bands``, ``input_scale``, ``backbone``, ``training``,
  ``snca_version``, ``orientations``, ``training_resolution_m`` = ``[min, max]`` metres per pixel
  of the training images, read by :mod:`snca_cli.contract.resolution`), and optionally
  ``class_colours`` (class name -> ``#rrggbb``, written by ``snca adapt`` and editable; classes
  it leaves out take the colours :mod:`snca_cli.contract.class_colours` gives their names).

Those tools run a model with one output only: ``snca convert`` (:mod:`snca_cli.tasks.convert`)
writes the copies they run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from snca_cli.contract.class_colours import check_colour
from snca_cli.contract.open_set import OpenSetRule
from snca_cli.errors import SncaError

INPUT_NAME = "image"
EMBEDDING_OUTPUT = "embedding"
PROBABILITIES_OUTPUT = "probabilities"

#: Deepness' model type for models whose first output is an embedding used for similarity.
MODEL_TYPE = "Recognition"

#: Keys a model must carry for the runtime to use it.
REQUIRED_KEYS = (
    "model_type",
    "class_names",
    "tile_size",
    "embedding_dim",
    "input_bands",
    "input_scale",
)

#: How raw raster values map to [0, 1] by default: divide by this value for each data type.
DEFAULT_INPUT_SCALE: dict[str, float] = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}


#: The metadata keeps Deepness's ``resolution`` in centimetres per pixel; every command takes
#: metres per pixel (``--resolution``) and converts here.
CM_PER_M = 100.0
#: The ground resolutions (m/px) a command takes (tiling, or written into a model): from a
#: micrometre (the metadata keeps 6 decimals of a centimetre) to 1,000 km (coarser than any
#: image of the Earth; 1e300 overflowed the tiling).
RESOLUTION_RANGE_M = (1e-6, 1e6)

#: Most bytes of metadata (every key and value of ``metadata_props``, UTF-8) a model may hold,
#: checked before any value is parsed: snca writes a few kilobytes, an adapted model's open-set
#: prototypes up to about 10 MB (1,000 classes of 1,024 dimensions); 64 MiB parse in ~1.5 s.
MAX_METADATA_BYTES = 64 << 20
#: Most characters of a name in the metadata (a class, the backbone, the snca version, the
#: model type): names are shown in tables and warnings and become file names.
MAX_NAME_CHARS = 1000


def check_resolution_m(metres: float, what: str = "--resolution") -> float:
    """``metres``, a ground resolution in m/px; SncaError naming ``what`` unless it is within
    :data:`RESOLUTION_RANGE_M`."""
    low, high = RESOLUTION_RANGE_M
    if not low <= metres <= high:  # NaN included
        raise SncaError(
            f"{what} takes metres per pixel from {low:f} to {high:,.0f}, e.g. 0.5; got {metres:g}"
        )
    return metres


def resolution_cm_from_m(metres: float) -> float:
    """The metadata's ``resolution`` (cm/px) of a ground resolution typed in m/px; SncaError
    unless it is within :data:`RESOLUTION_RANGE_M`."""
    return round(check_resolution_m(metres) * CM_PER_M, 6)  # 0.3 m is 30 cm, not 30.0000...04


def check_name(name: str, what: str) -> None:
    """Raise SncaError when ``name`` (``what`` it is, e.g. ``class name``) is longer than
    :data:`MAX_NAME_CHARS`; the message shows its start only."""
    if len(name) > MAX_NAME_CHARS:
        raise SncaError(
            f"{what} {name[:40]!r}... is {len(name):,} characters long; "
            f"names have at most {MAX_NAME_CHARS:,}"
        )


def _check_size(props: dict[str, str], source: str) -> None:
    """Raise SncaError when ``props`` hold more than :data:`MAX_METADATA_BYTES` (the largest
    key is named)."""
    sizes = {key: len(key.encode()) + len(value.encode()) for key, value in props.items()}
    total = sum(sizes.values())
    if total > MAX_METADATA_BYTES:
        largest = max(sizes, key=sizes.__getitem__)
        raise SncaError(
            f"{source} holds {total:,} bytes of metadata ({largest[:40]!r}: {sizes[largest]:,}); "
            f"snca reads at most {MAX_METADATA_BYTES >> 20} MiB (not a model snca wrote?)"
        )


@dataclass
class ModelMetadata:
    """Everything the runtime needs to know about an exported model."""

    class_names: list[str]
    tile_size: int
    embedding_dim: int
    input_bands: int = 3
    input_scale: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INPUT_SCALE))
    resolution_cm: float | None = None
    tiles_overlap: float = 0.0
    backbone: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    snca_version: str = ""
    model_type: str = MODEL_TYPE
    #: Outputs averaged inside the graph over this many orientations of each tile: 1, or 8 (the
    #: flips and quarter turns; ``snca export --tta``).
    orientations: int = 1
    #: The open-set rule of an adapted model (``snca adapt``): tiles unlike every class are
    #: ``unknown``; None for models without one.
    open_set: OpenSetRule | None = None
    #: The SHA-256 of the model file whose embedding this one computes (an adapted model keeps
    #: its base model's graph and ``embedding`` output): indexes follow the embedding, so one
    #: built with the base model is searched with the adapted one. None: this file's own.
    embedding_sha256: str | None = None
    #: Ground resolution of the training images, metres per pixel ``(min, max)``; None: unknown.
    training_resolution_m: tuple[float, float] | None = None
    #: Colours of some or all classes (name -> ``#rrggbb``), kept over the ones chosen from
    #: the class names (:func:`snca_cli.contract.class_colours.class_colours`); None: none.
    class_colours: dict[str, str] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def resolution_m(self) -> float | None:
        """Ground resolution in metres per pixel, or None when the model has none."""
        return None if self.resolution_cm is None else self.resolution_cm / CM_PER_M

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` of the ONNX file: every value JSON-encoded."""
        values: dict[str, Any] = {
            "model_type": self.model_type,
            "class_names": {str(i): name for i, name in enumerate(self.class_names)},
            "tile_size": self.tile_size,
            "tiles_size": self.tile_size,
            "tiles_overlap": self.tiles_overlap,
            # normalisation is inside the graph: a tool feeding [0, 1] values must leave them be
            "standardization_mean": [0.0] * self.input_bands,
            "standardization_std": [1.0] * self.input_bands,
            "embedding_dim": self.embedding_dim,
            "input_bands": self.input_bands,
            "input_scale": self.input_scale,
            "backbone": self.backbone,
            "training": self.training,
            "snca_version": self.snca_version,
            "orientations": self.orientations,
        }
        if self.open_set is not None:
            values["open_set"] = self.open_set.to_json()
        if self.embedding_sha256 is not None:
            values["embedding_sha256"] = self.embedding_sha256
        if self.resolution_cm is not None:
            # Deepness and GeoDeep read it with float(): an unknown resolution is left out, never
            # written as null (they then use their own default or the raster's)
            values["resolution"] = self.resolution_cm
        if self.training_resolution_m is not None:
            values["training_resolution_m"] = list(self.training_resolution_m)
        if self.class_colours is not None:
            values["class_colours"] = self.class_colours
        return {key: json.dumps(value) for key, value in values.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMetadata:
        """Parse ``metadata_props``; raise SncaError naming every missing or malformed key, or
        metadata beyond :data:`MAX_METADATA_BYTES`."""
        _check_size(props, source)
        missing = [key for key in REQUIRED_KEYS if key not in props]
        if missing:
            raise SncaError(
                f"{source} lacks the snca metadata keys: {', '.join(missing)} "
                "(export it with `snca export`)"
            )
        try:
            values = {key: json.loads(value) for key, value in props.items()}
            names = values["class_names"]
            if isinstance(names, dict):
                names = [names[k] for k in sorted(names, key=lambda k: int(k))]
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise ValueError("class_names must be names (text)")
            class_names = names
            resolution = values.get("resolution")
            trained_at = values.get("training_resolution_m")
            colours = values.get("class_colours")
            metadata = cls(
                class_names=class_names,
                tile_size=int(values["tile_size"]),
                embedding_dim=int(values["embedding_dim"]),
                input_bands=int(values["input_bands"]),
                input_scale={str(k): float(v) for k, v in values["input_scale"].items()},
                resolution_cm=None if resolution is None else float(resolution),
                tiles_overlap=float(values.get("tiles_overlap", 0.0)),
                backbone=str(values.get("backbone", "")),
                training=dict(values.get("training") or {}),
                snca_version=str(values.get("snca_version", "")),
                model_type=str(values["model_type"]),
                orientations=int(values.get("orientations", 1)),
                embedding_sha256=values.get("embedding_sha256"),
                training_resolution_m=(
                    None if trained_at is None else (float(trained_at[0]), float(trained_at[1]))
                ),
                class_colours=None if colours is None else {str(k): v for k, v in colours.items()},
            )
            if "open_set" in values:
                metadata.open_set = OpenSetRule.from_json(
                    values["open_set"], len(class_names), metadata.embedding_dim
                )
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise SncaError(f"{source} has malformed snca metadata: {exc}") from None
        metadata.check(source)
        return metadata

    def check(self, source: str = "model") -> None:
        """Raise SncaError naming the first metadata value outside its range."""
        problems = [
            (self.tile_size >= 1, f"tile_size {self.tile_size} (must be at least 1 px)"),
            (self.embedding_dim >= 1, f"embedding_dim {self.embedding_dim} (must be at least 1)"),
            (self.input_bands >= 1, f"input_bands {self.input_bands} (must be at least 1)"),
            (len(self.class_names) >= 1, "no class_names"),
            (
                self.resolution_cm is None
                or (math.isfinite(self.resolution_cm) and self.resolution_cm > 0),
                f"resolution {self.resolution_cm} (must be positive centimetres per pixel)",
            ),
            (
                all(math.isfinite(v) and v > 0 for v in self.input_scale.values()),
                f"input_scale {self.input_scale} (divisors must be positive numbers)",
            ),
            (math.isfinite(self.tiles_overlap), f"tiles_overlap {self.tiles_overlap}"),
            (self.orientations >= 1, f"orientations {self.orientations} (must be at least 1)"),
            (
                self.training_resolution_m is None
                or (
                    all(math.isfinite(v) and v > 0 for v in self.training_resolution_m)
                    and self.training_resolution_m[0] <= self.training_resolution_m[1]
                ),
                f"training_resolution_m {self.training_resolution_m} (must be [min, max] "
                "metres per pixel, 0 < min <= max)",
            ),
        ]
        for ok, what in problems:
            if not ok:
                raise SncaError(f"{source} has an invalid snca metadata value: {what}")
        self._check_names(source)
        self._check_colours(source)

    def _check_names(self, source: str) -> None:
        """Raise SncaError for a name longer than :data:`MAX_NAME_CHARS`."""
        names = [("model_type", self.model_type), ("backbone", self.backbone)]
        names += [("snca_version", self.snca_version)]
        names += [("class name", name) for name in self.class_names]
        for what, name in names:
            check_name(name, f"{source} has an invalid snca metadata value: {what}")

    def _check_colours(self, source: str) -> None:
        """Raise SncaError unless ``class_colours`` names classes of the model, each with a
        ``#rrggbb`` colour; the colours are kept lower-case."""
        if self.class_colours is None:
            return
        strangers = sorted(set(self.class_colours) - set(self.class_names))
        if strangers:
            raise SncaError(
                f"{source} has class_colours for classes it does not have: {', '.join(strangers)}"
            )
        self.class_colours = {
            name: check_colour(colour, f"{source}: the class_colours entry of {name!r},")
            for name, colour in self.class_colours.items()
        }
