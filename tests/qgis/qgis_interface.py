"""A real, headless ``QgisInterface`` for plugin tests.

It subclasses :class:`qgis.gui.QgisInterface` and backs the calls a plugin makes with real
widgets: a ``QMainWindow`` holding a ``QgsMapCanvas`` kept in sync with the project's layer tree,
a ``QgsMessageBar``, a toolbar and a plugin menu. Docks, toolbar icons and menu entries are
really added to (and removed from) the main window, so tests can check that ``unload`` cleans up.
"""

from __future__ import annotations

from qgis.core import QgsMapLayer, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgisInterface, QgsLayerTreeMapCanvasBridge, QgsMapCanvas, QgsMessageBar
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAction, QDockWidget, QMainWindow, QMenu, QToolBar


class HeadlessQgisInterface(QgisInterface):
    """The subset of the QGIS interface that plugins use, on real widgets."""

    def __init__(self) -> None:
        super().__init__()
        self.window = QMainWindow()
        self.window.resize(1200, 800)
        self.canvas = QgsMapCanvas(self.window)
        self.canvas.resize(800, 600)
        self.window.setCentralWidget(self.canvas)
        self.bar = QgsMessageBar(self.window)
        self.toolbar = QToolBar("Plugins", self.window)
        self.window.addToolBar(self.toolbar)
        self.plugin_menu = QMenu("Plugins", self.window)
        self.window.menuBar().addMenu(self.plugin_menu)
        self.plugin_submenus: dict[str, QMenu] = {}
        self.bridge = QgsLayerTreeMapCanvasBridge(
            QgsProject.instance().layerTreeRoot(), self.canvas
        )
        self._active_layer: QgsMapLayer | None = None

    # --- windows and widgets -------------------------------------------------------------
    def mainWindow(self) -> QMainWindow:
        return self.window

    def mapCanvas(self) -> QgsMapCanvas:
        return self.canvas

    def messageBar(self) -> QgsMessageBar:
        return self.bar

    def addDockWidget(self, area: Qt.DockWidgetArea, dock: QDockWidget) -> None:
        self.window.addDockWidget(area, dock)

    def removeDockWidget(self, dock: QDockWidget) -> None:
        self.window.removeDockWidget(dock)

    def addToolBarIcon(self, action: QAction) -> int:
        self.toolbar.addAction(action)
        return 0

    def removeToolBarIcon(self, action: QAction) -> None:
        self.toolbar.removeAction(action)

    def addPluginToMenu(self, name: str, action: QAction) -> None:
        menu = self.plugin_submenus.get(name)
        if menu is None:
            menu = self.plugin_menu.addMenu(name)
            self.plugin_submenus[name] = menu
        menu.addAction(action)

    def removePluginMenu(self, name: str, action: QAction) -> None:
        menu = self.plugin_submenus.get(name)
        if menu is None:
            return
        menu.removeAction(action)
        if not menu.actions():
            self.plugin_menu.removeAction(menu.menuAction())
            del self.plugin_submenus[name]

    # --- layers --------------------------------------------------------------------------
    def activeLayer(self) -> QgsMapLayer | None:
        return self._active_layer

    def setActiveLayer(self, layer: QgsMapLayer) -> bool:
        self._active_layer = layer
        return True

    def addRasterLayer(self, path: str, name: str = "") -> QgsRasterLayer:
        layer = QgsRasterLayer(path, name or path)
        QgsProject.instance().addMapLayer(layer)
        return layer

    def addVectorLayer(self, path: str, name: str, provider: str) -> QgsVectorLayer:
        layer = QgsVectorLayer(path, name, provider)
        QgsProject.instance().addMapLayer(layer)
        return layer

    def zoomFull(self) -> None:
        self.canvas.zoomToFullExtent()
