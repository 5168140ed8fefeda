"""Stable class colours: class ``i`` of a model always gets the same colour, in every project."""

from __future__ import annotations

#: 20 well separated colours (Kelly's list without white and black, then a few darker ones).
CLASS_PALETTE = (
    "#f3c300",
    "#875692",
    "#f38400",
    "#a1caf1",
    "#be0032",
    "#c2b280",
    "#848482",
    "#008856",
    "#e68fac",
    "#0067a5",
    "#f99379",
    "#604e97",
    "#f6a600",
    "#b3446c",
    "#dcd300",
    "#882d17",
    "#8db600",
    "#654522",
    "#e25822",
    "#2b3d26",
)


def class_colour(class_index: int) -> str:
    """The hex colour of class ``class_index`` (the palette repeats after 20 classes)."""
    if class_index < 0:
        raise ValueError(f"class index must be >= 0, got {class_index}")
    return CLASS_PALETTE[class_index % len(CLASS_PALETTE)]
