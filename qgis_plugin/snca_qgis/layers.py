"""QGIS layers for snca outputs: the classified tiles (categorised by class, stable colours), the
class-map raster (paletted, same colours), the similar tiles (graduated by similarity) and the
query tile (a bold outline).

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
    QgsClassificationEqualInterval,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsFillSymbol,
    QgsGeometry,
    QgsGradientColorRamp,
    QgsGraduatedSymbolRenderer,
    QgsPalettedRasterRenderer,
    QgsRasterLayer,
    QgsRectangle,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

from .palette import class_colour

#: The field of the classified tiles that holds the class name (written by ``snca classify``).
CLASS_NAME_FIELD = "class_name"
#: Opacity of the classified tiles, so the raster shows through.
CLASS_LAYER_OPACITY = 0.65
#: Classes of the graduated similarity style (fewer when there are fewer hits).
SIMILARITY_CLASSES = 5
#: Low and high colours of the similarity ramp (pale yellow to dark red).
SIMILARITY_RAMP = ("#ffffb2", "#bd0026")
#: Outline of the query tile.
QUERY_COLOUR = "#00e5ff"

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
    fields.append(QgsField("tile_id", QVariant.LongLong))
    fields.append(QgsField("class", QVariant.String))
    fields.append(QgsField("score", QVariant.Double))
    fields.append(QgsField("raster", QVariant.String))
    return fields


def query_tile_fields() -> QgsFields:
    """Fields of the query-tile layer."""
    fields = QgsFields()
    fields.append(QgsField("tile_id", QVariant.LongLong))
    fields.append(QgsField("class", QVariant.String))
    fields.append(QgsField("score", QVariant.Double))
    fields.append(QgsField("raster", QVariant.String))
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
        feature.setAttributes(
            [
                int(hit.rank),
                float(hit.similarity),
                int(hit.tile.tile_id),
                str(hit.tile.class_name),
                float(hit.tile.score),
                str(hit.tile.raster),
            ]
        )
        features.append(feature)
    return features


def query_feature(
    tile: Any, target: QgsCoordinateReferenceSystem, context: QgsCoordinateTransformContext
) -> QgsFeature:
    """The query tile as a feature (fields of :func:`query_tile_fields`)."""
    feature = QgsFeature(query_tile_fields())
    feature.setGeometry(tile_geometry(tile, target, context))
    feature.setAttributes(
        [int(tile.tile_id), str(tile.class_name), float(tile.score), str(tile.raster)]
    )
    return feature


def similarity_renderer(layer: QgsVectorLayer) -> QgsGraduatedSymbolRenderer:
    """A graduated style on ``similarity``: equal intervals over the hits, yellow to red."""
    renderer = QgsGraduatedSymbolRenderer("similarity")
    renderer.setSourceSymbol(
        QgsFillSymbol.createSimple(
            {"color": SIMILARITY_RAMP[1], "outline_color": "#202020", "outline_width": "0.3"}
        )
    )
    renderer.setClassificationMethod(QgsClassificationEqualInterval())
    classes = max(1, min(SIMILARITY_CLASSES, layer.featureCount()))
    renderer.updateClasses(layer, classes)
    renderer.updateColorRamp(
        QgsGradientColorRamp(QColor(SIMILARITY_RAMP[0]), QColor(SIMILARITY_RAMP[1]))
    )
    return renderer


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
    replace_features(layer, hit_features(hits, crs, context))
    layer.setRenderer(similarity_renderer(layer))
    layer.triggerRepaint()
    return layer


def query_tile_layer(
    tile: Any,
    crs: QgsCoordinateReferenceSystem,
    context: QgsCoordinateTransformContext,
    layer: QgsVectorLayer | None = None,
) -> QgsVectorLayer:
    """A memory layer (new, or ``layer`` refilled) with the query tile as a bold outline."""
    if layer is None or layer.crs() != crs:
        layer = _memory_layer(QUERY_LAYER_NAME, query_tile_fields(), crs)
        symbol = QgsFillSymbol.createSimple(
            {
                "style": "no",
                "outline_color": QUERY_COLOUR,
                "outline_width": "0.9",
                "outline_width_unit": "MM",
            }
        )
        layer.renderer().setSymbol(symbol)
    replace_features(layer, [query_feature(tile, crs, context)])
    layer.triggerRepaint()
    return layer
