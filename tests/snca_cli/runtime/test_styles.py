"""QGIS style documents written without QGIS: legends of the classes present with counts, the
similarity ramp and rank labels, the query outlines, the paletted class map."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from snca_cli.runtime.styles import (
    CLASS_LAYER_OPACITY,
    FILL_ALPHA,
    NEGATIVE_COLOUR,
    QUERY_COLOUR,
    RANK_LABEL,
    SIMILARITY_BREAKS,
    class_legend,
    class_map_qml,
    class_tiles_qml,
    qgis_colour,
    query_tiles_qml,
    range_label,
    similar_tiles_qml,
)

COLOURS = {"Forest": "#1b6e34", "River": "#4a90d9", "Desert": "#e5c36f", "unknown": "#9e9e9e"}


def parse(qml: str) -> ET.Element:
    assert qml.startswith("<!DOCTYPE qgis")
    return ET.fromstring(qml.split("\n", 1)[1])


def options(layer: ET.Element) -> dict[str, str]:
    return {o.get("name"): o.get("value") for o in layer.find("Option")}


def test_the_legend_lists_the_classes_present_in_model_order_with_counts() -> None:
    legend = class_legend(COLOURS, {"unknown": 2, "Forest": 12, "River": 0, "Desert": 1234})
    assert [(e.value, e.name, e.colour, e.label) for e in legend] == [
        (0, "Forest", "#1b6e34", "Forest (12)"),
        (2, "Desert", "#e5c36f", "Desert (1,234)"),
        (3, "unknown", "#9e9e9e", "unknown (2)"),
    ]
    assert class_legend(COLOURS, {}) == []


def test_class_tiles_are_categories_of_the_classes_present() -> None:
    legend = class_legend(COLOURS, {"Forest": 12, "Desert": 3})
    root = parse(class_tiles_qml(legend))
    renderer = root.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "class_name"
    categories = [(c.get("value"), c.get("label")) for c in renderer.iter("category")]
    assert categories == [("Forest", "Forest (12)"), ("Desert", "Desert (3)")]
    fills = [options(layer)["color"] for layer in renderer.iter("layer")]
    assert fills == ["27,110,52,255", "229,195,111,255"]
    assert float(root.findtext("layerOpacity")) == CLASS_LAYER_OPACITY


def test_class_map_is_paletted_on_band_1() -> None:
    legend = class_legend(COLOURS, {"River": 5, "unknown": 1})
    renderer = parse(class_map_qml(legend)).find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    assert renderer.get("alphaBand") == "-1"
    entries = [
        (e.get("value"), e.get("color"), e.get("label")) for e in renderer.iter("paletteEntry")
    ]
    assert entries == [("1", "#4a90d9", "River (5)"), ("3", "#9e9e9e", "unknown (1)")]


def test_similar_tiles_have_the_ramp_rank_labels_and_best_on_top() -> None:
    root = parse(similar_tiles_qml())
    assert root.get("labelsEnabled") == "1"
    renderer = root.find("renderer-v2")
    assert renderer.get("type") == "graduatedSymbol" and renderer.get("attr") == "similarity"
    ranges = [(float(r.get("lower")), float(r.get("upper"))) for r in renderer.iter("range")]
    assert ranges == [(low, high) for low, high, _ in SIMILARITY_BREAKS]
    assert [r.get("label") for r in renderer.iter("range")][::4] == ["< 0.5", "0.9 - 1.0"]
    first = options(next(renderer.iter("layer")))
    assert first["color"] == qgis_colour("#ffffb2", FILL_ALPHA)
    assert first["outline_color"] == qgis_colour("#ffffb2")
    assert renderer.get("enableorderby") == "1"
    clause = renderer.find("orderby/orderByClause")
    assert clause.text == "rank" and clause.get("asc") == "0"
    style = root.find("labeling/settings/text-style")
    assert style.get("fieldName") == RANK_LABEL and style.get("isExpression") == "1"
    assert style.find("text-buffer").get("bufferDraw") == "1"


def test_query_tiles_are_outlines() -> None:
    renderer = parse(query_tiles_qml()).find("renderer-v2")
    assert renderer.get("attr") == "example"
    assert [c.get("value") for c in renderer.iter("category")] == ["positive", "negative"]
    layers = [options(layer) for layer in renderer.iter("layer")]
    assert [o["style"] for o in layers] == ["no", "no"]
    assert [o["outline_color"] for o in layers] == [
        qgis_colour(QUERY_COLOUR),
        qgis_colour(NEGATIVE_COLOUR),
    ]
    assert [o["outline_style"] for o in layers] == ["solid", "dash"]


def test_range_labels() -> None:
    assert [range_label(low, high) for low, high, _ in SIMILARITY_BREAKS] == [
        "< 0.5",
        "0.5 - 0.7",
        "0.7 - 0.8",
        "0.8 - 0.9",
        "0.9 - 1.0",
    ]
