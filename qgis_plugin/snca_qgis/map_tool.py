"""The "Find similar" map tool: a click on the map names the query tile."""

from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapToolEmitPoint
from qgis.PyQt.QtCore import Qt, pyqtSignal


class SimilarTileMapTool(QgsMapToolEmitPoint):
    """Emits ``point_chosen(point, crs)`` on a left click: the point in the canvas CRS."""

    point_chosen = pyqtSignal(QgsPointXY, QgsCoordinateReferenceSystem)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.setCursor(Qt.CrossCursor)

    def canvasReleaseEvent(self, event: QgsMapMouseEvent) -> None:
        """A left-button release picks the point (a press and drag does not pan here)."""
        if event.button() != Qt.LeftButton:
            return
        self.choose(event.mapPoint())

    def choose(self, point: QgsPointXY) -> None:
        """Pick ``point`` (canvas CRS) as if it had been clicked."""
        crs = self.canvas().mapSettings().destinationCrs()
        self.point_chosen.emit(QgsPointXY(point), crs)
