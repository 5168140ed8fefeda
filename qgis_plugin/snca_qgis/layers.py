"""QGIS layers for snca outputs: the classified tiles (categorised by class, stable colours), the
class-map raster (paletted, same colours), the similar tiles and the query tiles.

The similar tiles are semi-transparent fills with a strong outline, labelled with their rank and
drawn best last (rank 1 on top of the tiles it overlaps). Their colour comes from a fixed
similarity ramp (:data:`SIMILARITY_BREAKS`), the same in every search, so a colour always means
the same similarity. The query tiles are outlines: cyan for the examples searched for (positive),
magenta dashed for the ones ranked away from (negative).

Search results come from :mod:`snca_cli.tasks.index.search` (``SearchResult`` with ``hits``, each
with
``rank``, ``similarity`` and ``tile``: ``tile_id``, ``raster``, ``crs`` (rasterio), ``bounds``,
``class_name``, ``score``); this module only turns them into features and styles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsFillSymbol,
    QgsGeometry,
    QgsGraduatedSymbolRenderer,
    QgsPalettedRasterRenderer,
    QgsPalLayerSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsRendererCategory,
    QgsRendererRange,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

from .palette import class_colour

#: The field of the classified tiles that holds the class name (written by ``snca classify``).
CLASS_NAME_FIELD = "class_name"
#: Opacity of the classified tiles, so the raster shows through.
CLASS_LAYER_OPACITY = 0.65
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
#: Outline of the query tiles searched for, and of those ranked away from.
QUERY_COLOUR = "#00e5ff"
NEGATIVE_COLOUR = "#ff00ff"

SIMILAR_LAYER_NAME = "snca similar tiles"
QUERY_LAYER_NAME = "snca query tile"


def qgis_crs(crs: Any) -> QgsCoordinateReferenceSystem:
    """A QGIS CRS from a rasterio CRS (EPSG code when it has one, else its WKT)."""
    epsg = crs.to_epsg()
    if epsg:
        return QgsCoordinateReferenceSystem(f"EPSG:{epsg}")
    return QgsCoordinateReferenceSystem.fromWkt(crs.to_wkt())


def crs_for_snca(crs: QgsCoordinateReferenceSystem) -> str:
    """A QGIS CRS as a string snca (rasterio) reads: ``EPSG:<code>`` or its WKT."""
    authid = crs.authid()
    if authid.upper().startswith("EPSG:"):
        return authid
    return crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED)


# --- classified tiles -------------------------------------------------------------------------
def class_renderer(
    class_names: Sequence[str], field: str = CLASS_NAME_FIELD
) -> QgsCategorizedSymbolRenderer:
    """One category per model class, in model order, coloured by class index."""
    categories = []
    for index, name in enumerate(class_names):
        symbol = QgsFillSymbol.createSimple(
            {
                "color": class_colour(index),
                "outline_color": "#303030",
                "outline_width": "0.1",
                "outline_width_unit": "MM",
            }
        )
        categories.append(QgsRendererCategory(name, symbol, name))
    return QgsCategorizedSymbolRenderer(field, categories)


def style_class_layer(layer: QgsVectorLayer, class_names: Sequence[str]) -> None:
    """Style a classified-tiles layer by class, semi-transparent."""
    layer.setRenderer(class_renderer(class_names))
    layer.setOpacity(CLASS_LAYER_OPACITY)
    layer.triggerRepaint()


def style_class_map(layer: QgsRasterLayer, class_names: Sequence[str]) -> None:
    """Style a class-map raster (band 1 = class id) with the same colours as the tiles."""
    classes = [
        QgsPalettedRasterRenderer.Class(index, QColor(class_colour(index)), name)
        for index, name in enumerate(class_names)
    ]
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)
    layer.setRenderer(renderer)
    layer.setOpacity(CLASS_LAYER_OPACITY)
    layer.triggerRepaint()


# --- similar tiles ----------------------------------------------------------------------------
def similar_tile_fields() -> QgsFields:
    """Fields of the similar-tiles layer."""
    fields = QgsFields()
    fields.append(QgsField("rank", QVariant.Int))
    fields.append(QgsField("similarity", QVariant.Double))
    _tile_fields(fields)
    return fields


def _tile_fields(fields: QgsFields) -> None:
    """The fields naming a tile: its grid id, row and column in its raster, class, score."""
    fields.append(QgsField("tile_id", QVariant.LongLong))
    fields.append(QgsField("row", QVariant.Int))
    fields.append(QgsField("col", QVariant.Int))
    fields.append(QgsField("raster", QVariant.String))
    fields.append(QgsField("class", QVariant.String))
    fields.append(QgsField("score", QVariant.Double))


def _tile_values(tile: Any) -> list[Any]:
    """The values of :func:`_tile_fields` for an indexed tile."""
    return [
        int(tile.tile_id),
        int(tile.row),
        int(tile.col),
        str(tile.raster.name),
        str(tile.class_name),
        float(tile.score),
    ]


def query_tile_fields() -> QgsFields:
    """Fields of the query-tile layer."""
    fields = QgsFields()
    fields.append(QgsField("example", QVariant.String))
    _tile_fields(fields)
    return fields


def tile_geometry(
    tile: Any,
    target: QgsCoordinateReferenceSystem,
    context: QgsCoordinateTransformContext,
) -> QgsGeometry:
    """The footprint of an indexed tile as a polygon in ``target``."""
    geometry = QgsGeometry.fromRect(QgsRectangle(*tile.bounds))
    source = qgis_crs(tile.crs)
    if source != target:
        geometry.transform(QgsCoordinateTransform(source, target, context))
    return geometry


def hit_features(
    hits: Iterable[Any],
    target: QgsCoordinateReferenceSystem,
    context: QgsCoordinateTransformContext,
) -> list[QgsFeature]:
    """One feature per hit (fields of :func:`similar_tile_fields`), in rank order."""
    fields = similar_tile_fields()
    features = []
    for hit in hits:
        feature = QgsFeature(fields)
        feature.setGeometry(tile_geometry(hit.tile, target, context))
        feature.setAttributes([int(hit.rank), float(hit.similarity), *_tile_values(hit.tile)])
        features.append(feature)
    return features


def query_feature(
    tile: Any,
    example: str,
    target: QgsCoordinateReferenceSystem,
    context: QgsCoordinateTransformContext,
) -> QgsFeature:
    """A query tile as a feature (fields of :func:`query_tile_fields`); ``example`` is
    ``positive`` or ``negative``."""
    feature = QgsFeature(query_tile_fields())
    feature.setGeometry(tile_geometry(tile, target, context))
    feature.setAttributes([example, *_tile_values(tile)])
    return feature


def _hit_symbol(colour: str) -> QgsFillSymbol:
    fill = QColor(colour)
    fill.setAlpha(FILL_ALPHA)
    return QgsFillSymbol.createSimple(
        {
            "color": ",".join(str(v) for v in fill.getRgb()),
            "outline_color": colour,
            "outline_width": "0.8",
            "outline_width_unit": "MM",
        }
    )


def similarity_renderer() -> QgsGraduatedSymbolRenderer:
    """The fixed ramp of :data:`SIMILARITY_BREAKS` on ``similarity``, best drawn last."""
    ranges = [
        QgsRendererRange(low, high, _hit_symbol(colour), _range_label(low, high))
        for low, high, colour in SIMILARITY_BREAKS
    ]
    renderer = QgsGraduatedSymbolRenderer("similarity", ranges)
    renderer.setOrderBy(
        QgsFeatureRequest.OrderBy([QgsFeatureRequest.OrderByClause("rank", ascending=False)])
    )
    renderer.setOrderByEnabled(True)
    return renderer


def _range_label(low: float, high: float) -> str:
    if low < -1:
        return f"< {high:.1f}"
    if high > 1:
        return f"{low:.1f} - 1.0"
    return f"{low:.1f} - {high:.1f}"


def rank_labels() -> QgsVectorLayerSimpleLabeling:
    """``#rank`` in bold at the centre of each similar tile, with a white halo."""
    settings = QgsPalLayerSettings()
    settings.fieldName = "'#' || \"rank\""
    settings.isExpression = True
    settings.placement = QgsPalLayerSettings.OverPoint
    text = QgsTextFormat()
    font = text.font()
    font.setBold(True)
    text.setFont(font)
    text.setSize(11)
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(1.2)
    buffer.setColor(QColor("white"))
    text.setBuffer(buffer)
    settings.setFormat(text)
    return QgsVectorLayerSimpleLabeling(settings)


def style_similar_layer(layer: QgsVectorLayer) -> None:
    """Style a layer of similar tiles (fields of :func:`similar_tile_fields`): the similarity
    ramp, labelled with the ranks."""
    layer.setRenderer(similarity_renderer())
    layer.setLabeling(rank_labels())
    layer.setLabelsEnabled(True)


def expand_legend(layer: QgsVectorLayer | QgsRasterLayer) -> None:
    """Open the layer's legend (its classes) in the Layers panel."""
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    if node is not None:
        node.setExpanded(True)


def _memory_layer(
    name: str, fields: QgsFields, crs: QgsCoordinateReferenceSystem
) -> QgsVectorLayer:
    layer = QgsVectorLayer("Polygon", name, "memory")
    layer.setCrs(crs)
    layer.dataProvider().addAttributes(fields.toList())
    layer.updateFields()
    return layer


def replace_features(layer: QgsVectorLayer, features: list[QgsFeature]) -> None:
    """Replace every feature of a memory layer."""
    provider = layer.dataProvider()
    provider.truncate()
    provider.addFeatures(features)
    layer.updateExtents()


def similar_tiles_layer(
    hits: list[Any],
    crs: QgsCoordinateReferenceSystem,
    context: QgsCoordinateTransformContext,
    layer: QgsVectorLayer | None = None,
) -> QgsVectorLayer:
    """A memory layer (new, or ``layer`` refilled) of the hits, styled by similarity."""
    if layer is None or layer.crs() != crs:
        layer = _memory_layer(SIMILAR_LAYER_NAME, similar_tile_fields(), crs)
        style_similar_layer(layer)
    replace_features(layer, hit_features(hits, crs, context))
    layer.triggerRepaint()
    return layer


def _outline(colour: str, style: str) -> QgsFillSymbol:
    return QgsFillSymbol.createSimple(
        {
            "style": "no",
            "outline_color": colour,
            "outline_style": style,
            "outline_width": "0.9",
            "outline_width_unit": "MM",
        }
    )


def query_renderer() -> QgsCategorizedSymbolRenderer:
    """Positive examples as cyan outlines, negative ones as magenta dashed outlines."""
    return QgsCategorizedSymbolRenderer(
        "example",
        [
            QgsRendererCategory("positive", _outline(QUERY_COLOUR, "solid"), "searched for"),
            QgsRendererCategory("negative", _outline(NEGATIVE_COLOUR, "dash"), "ranked away"),
        ],
    )


def style_query_layer(layer: QgsVectorLayer) -> None:
    """Style a layer of query tiles (fields of :func:`query_tile_fields`) as outlines."""
    layer.setRenderer(query_renderer())


def query_tile_layer(
    positives: Sequence[Any],
    negatives: Sequence[Any],
    crs: QgsCoordinateReferenceSystem,
    context: QgsCoordinateTransformContext,
    layer: QgsVectorLayer | None = None,
) -> QgsVectorLayer:
    """A memory layer (new, or ``layer`` refilled) with the example tiles as outlines."""
    if layer is None or layer.crs() != crs:
        layer = _memory_layer(QUERY_LAYER_NAME, query_tile_fields(), crs)
        style_query_layer(layer)
    features = [query_feature(tile, "positive", crs, context) for tile in positives]
    features += [query_feature(tile, "negative", crs, context) for tile in negatives]
    replace_features(layer, features)
    layer.triggerRepaint()
    return layer
