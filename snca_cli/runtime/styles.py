"""How snca's outputs look in QGIS, as QGIS style documents (QML) written without QGIS.

One look for the plugin's layers and for the files the command line writes
(:mod:`snca_cli.runtime.style_files` puts these documents where QGIS reads them on its own):

* classified tiles: one category per class *present*, labelled with its count (``Forest
  (12)``), in the class's colour (:mod:`snca_cli.contract.class_colours`) with a thin dark
  outline, the layer at :data:`CLASS_LAYER_OPACITY` so the imagery shows through;
* the class map: a paletted renderer on band 1 (class id) with the same classes and colours;
* similar tiles: a fixed similarity ramp (:data:`SIMILARITY_BREAKS`, ColorBrewer YlOrRd, the same
  in every search so a colour always means the same similarity) of semi-transparent fills with a
  strong outline, labelled ``#rank`` in bold with a white halo, drawn best last;
* query tiles: outlines only, cyan for the examples searched for, magenta dashed for those
  ranked away from.

The QML holds only what it sets (QGIS fills in its defaults) and is read by QGIS 3.22 and later.
Its second line is the comment :data:`QML_MARKER`, by which a later run recognises a ``.qml``
file it wrote (:data:`QML_OUTPUT`) and may replace.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from snca_cli.contract.class_colours import hex_rgb
from snca_cli.errors import first_line
from snca_cli.runtime.atomic import OwnOutput

#: The classified tiles' field holding the class name (written by ``snca classify``).
CLASS_NAME_FIELD = "class_name"
#: The comment every QML document snca writes has as its second line.
QML_MARKER = "<!-- written by snca -->"
#: Opacity of the classified tiles and of the class map, so the raster shows through.
CLASS_LAYER_OPACITY = 0.65
#: Outline of the classified tiles: colour and width in millimetres.
CLASS_OUTLINE = ("#303030", 0.1)
#: The fixed similarity ramp: (lower bound, upper bound, colour), cosine similarity, low to high
#: (ColorBrewer YlOrRd). Scores of negative-example searches can fall below 0: the first class.
SIMILARITY_BREAKS = (
    (-2.0, 0.5, "#ffffb2"),
    (0.5, 0.7, "#fecc5c"),
    (0.7, 0.8, "#fd8d3c"),
    (0.8, 0.9, "#f03b20"),
    (0.9, 1.0001, "#bd0026"),
)
#: Opacity (0-255) of the similar tiles' fills: the imagery stays visible under them.
FILL_ALPHA = 90
#: Width in millimetres of the similar tiles' outlines and of the query tiles' outlines.
HIT_OUTLINE_WIDTH = 0.8
QUERY_OUTLINE_WIDTH = 0.9
#: Outline of the query tiles searched for, and of those ranked away from.
QUERY_COLOUR = "#00e5ff"
NEGATIVE_COLOUR = "#ff00ff"
#: The query tiles' categories: (``example`` value, outline colour, line style, legend label).
QUERY_CATEGORIES = (
    ("positive", QUERY_COLOUR, "solid", "searched for"),
    ("negative", NEGATIVE_COLOUR, "dash", "ranked away"),
)
#: The similar tiles' label: a QGIS expression, its size in points and its halo in millimetres.
RANK_LABEL = "'#' || \"rank\""
RANK_LABEL_SIZE = 11
RANK_HALO_SIZE = 1.2
#: The oldest QGIS the documents are written for.
QGIS_VERSION = "3.22.0"


@dataclass(frozen=True)
class LegendEntry:
    """One class in a legend: its id (index in the model's classes), name, colour and count."""

    value: int
    name: str
    colour: str
    count: int

    @property
    def label(self) -> str:
        """``name (count)``, e.g. ``Forest (12)``."""
        return f"{self.name} ({self.count:,})"


def class_legend(colours: Mapping[str, str], counts: Mapping[str, int]) -> list[LegendEntry]:
    """The classes present (count above 0), in model order: ``colours`` holds every class of
    the run in class-id order (``unknown`` last when there is one), ``counts`` the tiles of
    each."""
    return [
        LegendEntry(value, name, colour, int(counts.get(name, 0)))
        for value, (name, colour) in enumerate(colours.items())
        if counts.get(name, 0) > 0
    ]


def range_label(low: float, high: float) -> str:
    """The legend label of a similarity range of :data:`SIMILARITY_BREAKS`."""
    if low < -1:
        return f"< {high:.1f}"
    if high > 1:
        return f"{low:.1f} - 1.0"
    return f"{low:.1f} - {high:.1f}"


def qgis_colour(colour: str, alpha: int = 255) -> str:
    """``#rrggbb`` as QGIS writes colours in styles: ``r,g,b,a``."""
    return ",".join(str(c) for c in (*hex_rgb(colour), alpha))


# --- QML documents ----------------------------------------------------------------------------


def class_tiles_qml(legend: Sequence[LegendEntry], field: str = CLASS_NAME_FIELD) -> str:
    """The classified tiles' style: categories on ``field``, one per legend entry."""
    root = _document("Symbology|Rendering")
    renderer = _renderer(root, "categorizedSymbol", attr=field)
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    outline, width = CLASS_OUTLINE
    for number, entry in enumerate(legend):
        _category(categories, entry.name, entry.label, number)
        _fill_symbol(symbols, number, qgis_colour(entry.colour), qgis_colour(outline), width)
    ET.SubElement(root, "layerOpacity").text = str(CLASS_LAYER_OPACITY)
    return _text(root)


def class_map_qml(legend: Sequence[LegendEntry]) -> str:
    """The class map's style: a paletted renderer on band 1 with the legend's classes."""
    root = _document("Symbology")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="paletted",
        band="1",
        alphaBand="-1",
        opacity=str(CLASS_LAYER_OPACITY),
        nodataColor="",
    )
    palette = ET.SubElement(renderer, "colorPalette")
    for entry in legend:
        ET.SubElement(
            palette,
            "paletteEntry",
            value=str(entry.value),
            color=entry.colour,
            alpha="255",
            label=entry.label,
        )
    return _text(root)


def similar_tiles_qml() -> str:
    """The similar tiles' style: the similarity ramp, best drawn last, ``#rank`` labels."""
    root = _document("Symbology|Labeling|Rendering", labels=True)
    renderer = _renderer(
        root, "graduatedSymbol", attr="similarity", graduatedMethod="GraduatedColor"
    )
    renderer.set("enableorderby", "1")
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    for number, (low, high, colour) in enumerate(SIMILARITY_BREAKS):
        ET.SubElement(
            ranges,
            "range",
            lower=repr(low),
            upper=repr(high),
            label=range_label(low, high),
            symbol=str(number),
            render="true",
        )
        fill, line = qgis_colour(colour, FILL_ALPHA), qgis_colour(colour)
        _fill_symbol(symbols, number, fill, line, HIT_OUTLINE_WIDTH)
    order = ET.SubElement(renderer, "orderby")
    ET.SubElement(order, "orderByClause", asc="0", nullsFirst="1").text = "rank"
    _rank_labels(root)
    return _text(root)


def query_tiles_qml() -> str:
    """The query tiles' style: outlines by ``example`` (:data:`QUERY_CATEGORIES`)."""
    root = _document("Symbology|Rendering")
    renderer = _renderer(root, "categorizedSymbol", attr="example")
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for number, (value, colour, line_style, label) in enumerate(QUERY_CATEGORIES):
        _category(categories, value, label, number)
        _fill_symbol(
            symbols, number, "0,0,0,0", qgis_colour(colour), QUERY_OUTLINE_WIDTH, "no", line_style
        )
    return _text(root)


def _document(categories: str, labels: bool = False) -> ET.Element:
    return ET.Element(
        "qgis",
        version=QGIS_VERSION,
        styleCategories=categories,
        labelsEnabled="1" if labels else "0",
    )


def _renderer(root: ET.Element, kind: str, **attributes: str) -> ET.Element:
    return ET.SubElement(
        root,
        "renderer-v2",
        type=kind,
        symbollevels="0",
        forceraster="0",
        enableorderby="0",
        **attributes,
    )


def _category(parent: ET.Element, value: str, label: str, symbol: int) -> None:
    ET.SubElement(parent, "category", value=value, label=label, symbol=str(symbol), render="true")


def _fill_symbol(
    parent: ET.Element,
    name: int,
    colour: str,
    outline: str,
    width: float,
    style: str = "solid",
    outline_style: str = "solid",
) -> None:
    """A simple fill symbol (colours as ``r,g,b,a``, outline width in millimetres)."""
    symbol = ET.SubElement(
        parent, "symbol", type="fill", name=str(name), alpha="1", clip_to_extent="1", force_rhr="0"
    )
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill", "enabled": "1", "pass": "0"})
    _options(
        layer,
        {
            "color": colour,
            "style": style,
            "outline_color": outline,
            "outline_style": outline_style,
            "outline_width": str(width),
            "outline_width_unit": "MM",
            "joinstyle": "bevel",
        },
    )


def _options(parent: ET.Element, values: Mapping[str, str]) -> None:
    options = ET.SubElement(parent, "Option", type="Map")
    for name, value in values.items():
        ET.SubElement(options, "Option", name=name, type="QString", value=value)


def _rank_labels(root: ET.Element) -> None:
    """Simple labeling: :data:`RANK_LABEL` in bold over the tile's centre, white halo."""
    labeling = ET.SubElement(root, "labeling", type="simple")
    settings = ET.SubElement(labeling, "settings", calloutType="simple")
    style = ET.SubElement(
        settings,
        "text-style",
        fieldName=RANK_LABEL,
        isExpression="1",
        fontSize=str(RANK_LABEL_SIZE),
        fontSizeUnit="Point",
        fontWeight="75",
        textColor="0,0,0,255",
        textOpacity="1",
    )
    ET.SubElement(
        style,
        "text-buffer",
        bufferDraw="1",
        bufferSize=str(RANK_HALO_SIZE),
        bufferSizeUnits="MM",
        bufferColor="255,255,255,255",
        bufferOpacity="1",
        bufferNoFill="1",
    )
    ET.SubElement(settings, "placement", placement="1")  # OverPoint: the polygon's centre
    ET.SubElement(settings, "rendering", drawLabels="1", obstacle="1")


def _text(root: ET.Element) -> str:
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{QML_MARKER}\n{body}\n"


def _qml_mismatch(path: Path) -> str | None:
    """Why ``path`` is not a style snca wrote (None when it is): its second line is
    :data:`QML_MARKER` (QGIS drops it when it saves a style of its own there)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(1024).splitlines()
    except OSError as exc:
        return f"cannot read it: {first_line(exc)}"
    if lines[1:2] != [QML_MARKER]:
        return "it has no snca mark, and it was not named as an output"
    return None


#: The class map's QGIS style, written beside it (:func:`class_map_qml`).
QML_OUTPUT = OwnOutput("a QGIS style", _qml_mismatch)
