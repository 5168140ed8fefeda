"""The "Find similar" map tool: a click on the map names the query tile.

A plain click starts a new search from the tile under it; Ctrl+click adds the tile as one more
example to search for, Shift+click as an example to rank away from (:data:`CLICK_MODES`).
"""

from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapTool, QgsMapToolEmitPoint
from qgis.PyQt.QtCore import Qt, pyqtSignal

#: What a click does, by keyboard modifier: a new search, one more positive, one negative.
NEW, POSITIVE, NEGATIVE = "new", "positive", "negative"
CLICK_MODES = {Qt.NoModifier: NEW, Qt.ControlModifier: POSITIVE, Qt.ShiftModifier: NEGATIVE}


class SimilarTileMapTool(QgsMapToolEmitPoint):
    """Emits ``point_chosen(point, crs, mode)`` on a left click: the point in the canvas CRS and
    the click's mode (:data:`CLICK_MODES`)."""

    point_chosen = pyqtSignal(QgsPointXY, QgsCoordinateReferenceSystem, str)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.setCursor(Qt.CrossCursor)

    def flags(self) -> QgsMapTool.Flags:
        """None of QgsMapToolEmitPoint's: with ``AllowZoomRect`` the canvas itself would take a
        Shift+press as the start of a zoom rectangle, and the Shift+click never reach us."""
        return QgsMapTool.Flags()

    def canvasReleaseEvent(self, event: QgsMapMouseEvent) -> None:
        """A left-button release picks the point (a press and drag does not pan here)."""
        if event.button() != Qt.LeftButton:
            return
        modifiers = event.modifiers() & (Qt.ControlModifier | Qt.ShiftModifier)
        self.choose(event.mapPoint(), CLICK_MODES.get(modifiers, NEW))

    def choose(self, point: QgsPointXY, mode: str = NEW) -> None:
        """Pick ``point`` (canvas CRS) as if it had been clicked."""
        crs = self.canvas().mapSettings().destinationCrs()
        self.point_chosen.emit(QgsPointXY(point), crs, mode)
