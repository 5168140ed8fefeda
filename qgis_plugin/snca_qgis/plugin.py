"""The plugin object QGIS loads: dock, toolbar button, menu entry, Processing provider.

The snca runtime is imported only after :func:`check_dependencies` found it: without it the
plugin still starts, shows one message with the exact install command, and disables its
actions.
"""

from __future__ import annotations

import html
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProcessingProvider
from qgis.gui import QgisInterface
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .dependencies import DependencyReport, check_dependencies
from .dock import SncaDock

PLUGIN_DIR = Path(__file__).resolve().parent
ICON_PATH = PLUGIN_DIR / "icon.png"
MENU = "&SNCA Scene Search"
TITLE = "SNCA"


class SncaPlugin:
    """SNCA Scene Search: classify raster tiles and find similar ones."""

    def __init__(self, iface: QgisInterface) -> None:
        self.iface = iface
        self.dependencies: DependencyReport | None = None
        self.provider: QgsProcessingProvider | None = None
        self.dock: SncaDock | None = None
        self.controller = None  # a controller.SncaController once snca is importable
        self.action: QAction | None = None

    def _check(self) -> DependencyReport:
        if self.dependencies is None:
            self.dependencies = check_dependencies()
        return self.dependencies

    def initProcessing(self) -> None:
        """Register the Processing provider (also called by ``qgis_process``)."""
        if self.provider is not None or not self._check().ok:
            return
        from .provider import SncaProvider

        self.provider = SncaProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Add the dock, its toolbar button and menu entry, and the Processing provider."""
        report = self._check()
        self.dock = SncaDock(self.iface.mainWindow())
        self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.action = QAction(QIcon(str(ICON_PATH)), "SNCA Scene Search", self.iface.mainWindow())
        self.action.setCheckable(True)
        self.action.setChecked(True)
        self.action.toggled.connect(self.dock.setVisible)
        self.dock.visibilityChanged.connect(self.action.setChecked)
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToMenu(MENU, self.action)

        # the Log Messages panel and the message bar read rich text: escaped, `'numpy<2'` stays
        for module, error in report.errors.items():
            QgsMessageLog.logMessage(
                html.escape(f"cannot import {module}: {error}"), TITLE, Qgis.Warning
            )
        message = report.message()
        if report.ok:
            from .controller import SncaController

            self.controller = SncaController(self.iface, self.dock)
            self.initProcessing()
        else:
            self.dock.set_actions_enabled(False)
            self.dock.cancel_button.setEnabled(False)
        if message:
            self.dock.show_problem(message, report.install_command())
            level = Qgis.Critical if not report.ok else Qgis.Info
            self.iface.messageBar().pushMessage(
                TITLE, html.escape(message), level=level, duration=0
            )

    def unload(self) -> None:
        """Remove everything initGui added."""
        if self.controller is not None:
            self.controller.unload()
            self.controller = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.action is not None:
            self.iface.removePluginMenu(MENU, self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.dock is not None:
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
