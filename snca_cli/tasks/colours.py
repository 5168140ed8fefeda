"""``snca colours``: the colour of each class of a model, and a copy with colours set.

A model's ``class_colours`` metadata (class name -> ``#rrggbb``) decides how its classes look
in every output (the styled GeoPackages, the class map, the plugin's layers); a class it leaves
out takes the colour its name suggests (:func:`snca_cli.contract.class_colours.class_colours`).
This writes all of them into the model, with the ones the user sets, so that they travel with
the model file and can be edited again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx

from snca_cli.contract.class_colours import check_colour, class_colours
from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import atomic_output, check_writable
from snca_cli.runtime.onnx_graph import load_snca_onnx, set_metadata


@dataclass(frozen=True)
class RecolourResult:
    """Every class's colour, in class order, and where the model was written (None: not)."""

    colours: dict[str, str]
    output: Path | None


def parse_colour_settings(settings: list[str]) -> dict[str, str]:
    """``["Forest=#1b6e34", ...]`` as ``{"Forest": "#1b6e34"}``; SncaError for a bad one."""
    chosen = {}
    for setting in settings:
        name, separator, colour = setting.rpartition("=")
        if not separator or not name:
            raise SncaError(f"--set takes CLASS=#rrggbb, not {setting!r}")
        chosen[name] = check_colour(colour, f"the colour of {name!r}")
    return chosen


def recolour_model(
    model_path: Path,
    chosen: Mapping[str, str],
    output: Path | None = None,
    force: bool = False,
) -> RecolourResult:
    """The colours of the model's classes with ``chosen`` applied; with ``output``, a copy of
    the model carrying all of them in its ``class_colours`` (``output`` may be the model
    itself, with ``force``)."""
    if output is not None:
        check_writable(output, force)
    model, metadata = load_snca_onnx(Path(model_path))
    unknown = sorted(set(chosen) - set(metadata.class_names))
    if unknown:
        raise SncaError(
            f"the model has no class {', '.join(map(repr, unknown))}; its classes: "
            f"{', '.join(metadata.class_names)}"
        )
    colours = class_colours(metadata.class_names, {**(metadata.class_colours or {}), **chosen})
    if output is None:
        return RecolourResult(colours, None)
    metadata.class_colours = colours
    set_metadata(model, metadata, {})
    with atomic_output(output, force=force) as tmp:
        onnx.save(model, str(tmp))
    return RecolourResult(colours, output)
