"""QGIS layers for snca outputs: the classified tiles (categorised by class, colours with
meaning), the class-map raster (paletted, same colours), the similar tiles and the query tiles.

The look is snca's (:mod:`snca_cli.runtime.styles`), the one the command line writes into its
files: legends list the classes present with their tile counts (``Forest (12)``) in the colours
of :mod:`snca_cli.contract.class_colours`. The similar tiles are semi-transparent fills with a
strong outline, labelled with their rank and drawn best last (rank 1 on top of the tiles it
overlaps). Their colour comes from a fixed similarity ramp (``SIMILARITY_BREAKS``), the same in
every search, so a colour always means the same similarity. The query tiles are outlines: cyan
for the examples searched for (positive), magenta dashed for the ones ranked away from
(negative).

Search results come from :mod:`snca_cli.tasks.index.search` (``SearchResult`` with ``hits``, each
with
``rank``, ``similarity`` and ``tile``: ``tile_id``, ``raster``, ``crs`` (rasterio), ``bounds``,
``class_name``, ``score``); this module only turns them into features and styles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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

from snca_cli.runtime.styles import (
    CLASS_LAYER_OPACITY,
    CLASS_NAME_FIELD,
    CLASS_OUTLINE,
    FILL_ALPHA,
    HIT_OUTLINE_WIDTH,
    QUERY_CATEGORIES,
    QUERY_OUTLINE_WIDTH,
    RANK_HALO_SIZE,
    RANK_LABEL,
    RANK_LABEL_SIZE,
    SIMILARITY_BREAKS,
    LegendEntry,
    class_legend,
    range_label,
)

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
    legend: Sequence[LegendEntry], field: str = CLASS_NAME_FIELD
) -> QgsCategorizedSymbolRenderer:
    """One category per legend entry (the classes present, in model order), in its colour."""
    outline, width = CLASS_OUTLINE
    categories = []
    for entry in legend:
        symbol = QgsFillSymbol.createSimple(
            {
                "color": entry.colour,
                "outline_color": outline,
                "outline_width": str(width),
                "outline_width_unit": "MM",
            }
        )
        categories.append(QgsRendererCategory(entry.name, symbol, entry.label))
    return QgsCategorizedSymbolRenderer(field, categories)


def layer_class_counts(layer: QgsVectorLayer, field: str = CLASS_NAME_FIELD) -> Counter[str]:
    """How many features of ``layer`` have each class name."""
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
    request.setSubsetOfAttributes([field], layer.fields())
    return Counter(str(feature[field]) for feature in layer.getFeatures(request))


def style_class_layer(layer: QgsVectorLayer, colours: Mapping[str, str]) -> None:
    """Style a classified-tiles layer by class, semi-transparent: ``colours`` holds every class
    of the run in class-id order; the legend lists those the layer has, with their counts."""
    layer.setRenderer(class_renderer(class_legend(colours, layer_class_counts(layer))))
    layer.setOpacity(CLASS_LAYER_OPACITY)
    layer.triggerRepaint()


def style_class_map(
    layer: QgsRasterLayer, colours: Mapping[str, str], counts: Mapping[str, int]
) -> None:
    """Style a class-map raster (band 1 = class id) as the tiles: the classes with tiles
    (``counts``), in their colours, labelled with their counts."""
    classes = [
        QgsPalettedRasterRenderer.Class(entry.value, QColor(entry.colour), entry.label)
        for entry in class_legend(colours, counts)
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
            "outline_width": str(HIT_OUTLINE_WIDTH),
            "outline_width_unit": "MM",
        }
    )


def similarity_renderer() -> QgsGraduatedSymbolRenderer:
    """The fixed ramp of :data:`SIMILARITY_BREAKS` on ``similarity``, best drawn last."""
    ranges = [
        QgsRendererRange(low, high, _hit_symbol(colour), range_label(low, high))
        for low, high, colour in SIMILARITY_BREAKS
    ]
    renderer = QgsGraduatedSymbolRenderer("similarity", ranges)
    renderer.setOrderBy(
        QgsFeatureRequest.OrderBy([QgsFeatureRequest.OrderByClause("rank", ascending=False)])
    )
    renderer.setOrderByEnabled(True)
    return renderer


def rank_labels() -> QgsVectorLayerSimpleLabeling:
    """``#rank`` in bold at the centre of each similar tile, with a white halo."""
    settings = QgsPalLayerSettings()
    settings.fieldName = RANK_LABEL
    settings.isExpression = True
    settings.placement = QgsPalLayerSettings.OverPoint
    text = QgsTextFormat()
    font = text.font()
    font.setBold(True)
    text.setFont(font)
    text.setSize(RANK_LABEL_SIZE)
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(RANK_HALO_SIZE)
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
            "outline_width": str(QUERY_OUTLINE_WIDTH),
            "outline_width_unit": "MM",
        }
    )


def query_renderer() -> QgsCategorizedSymbolRenderer:
    """Positive examples as cyan outlines, negative ones as magenta dashed outlines."""
    return QgsCategorizedSymbolRenderer(
        "example",
        [
            QgsRendererCategory(value, _outline(colour, style), label)
            for value, colour, style, label in QUERY_CATEGORIES
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
