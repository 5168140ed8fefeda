"""The resolution sanity rule: is a raster's ground resolution one the model can make sense of?

A model learns scenes at the ground resolutions of its training images
(``training_resolution_m = [min, max]`` in its metadata; AID: about 0.5 to 8 m per pixel). A
raster whose pixels are more than :data:`FACTOR` times coarser than ``max``, or finer than
``min`` divided by :data:`FACTOR`, shows the model scenes it has never seen: its classes and
similarities mean little there. Models without ``training_resolution_m`` get no warning.
"""

from __future__ import annotations

from snca_cli.contract.metadata import ModelMetadata

#: How far outside the training resolutions a raster may be before a warning (a ratio).
FACTOR = 4.0


def resolution_warning(metadata: ModelMetadata, pixel_size_m: float) -> str | None:
    """One line warning that ``pixel_size_m`` (metres per pixel the model sees) is far outside
    the model's training resolutions, or None when it is within the rule or the model has none."""
    if metadata.training_resolution_m is None or not pixel_size_m > 0:
        return None
    low, high = metadata.training_resolution_m
    if low / FACTOR <= pixel_size_m <= high * FACTOR:
        return None
    side = "coarser" if pixel_size_m > high * FACTOR else "finer"
    return (
        f"the raster's {pixel_size_m:.3g} m/px is far {side} than the {low:g}-{high:g} m/px the "
        f"model was trained on (more than {FACTOR:g}x outside): its classes and similarities "
        "will mean little"
    )
