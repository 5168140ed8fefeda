"""The plugin object QGIS loads: dock, toolbar button, menu entry, Processing provider.

The snca runtime is imported only after :func:`check_dependencies` found it: without it the
plugin still starts, shows one message and the dock's Install runtime button, and disables its
actions, and the Processing algorithms are listed but say how to install the runtime; once the
button's background install has finished, the plugin enables itself (no restart of QGIS).
"""

from __future__ import annotations

import html
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProcessingProvider
from qgis.gui import QgisInterface, QgsMessageBarItem
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .dependencies import DependencyReport, check_dependencies
from .dock import SncaDock
from .install_task import InstallRuntimeTask

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
        self.install_task: InstallRuntimeTask | None = None
        self._message: QgsMessageBarItem | None = None

    def _check(self) -> DependencyReport:
        if self.dependencies is None:
            self.dependencies = check_dependencies()
        return self.dependencies

    def initProcessing(self) -> None:
        """Register the Processing provider (also called by ``qgis_process``); without a
        working runtime its algorithms say how to install it. Called again once the runtime
        works, it lets them run."""
        report = self._check()
        unavailable = "" if report.ok else report.processing_line()
        if self.provider is not None:
            self.provider.set_unavailable(unavailable)
            return
        from .provider import SncaProvider

        self.provider = SncaProvider(unavailable)
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

        self.dock.install_requested.connect(self.install_runtime)
        self._apply(report)

    def _apply(self, report: DependencyReport) -> None:
        """Start the controller and the provider when the runtime works, else say why."""
        # details for the Log Messages panel (rich text: escaped); the dock says what to do
        for module, error in report.errors.items():
            QgsMessageLog.logMessage(
                html.escape(f"cannot import {module}: {error}"), TITLE, Qgis.Info
            )
        self.initProcessing()
        if report.ok:
            from .controller import SncaController

            self.dock.show_problem("")
            self.controller = SncaController(self.iface, self.dock)
            return
        self.dock.set_actions_enabled(False)
        self.dock.cancel_button.setEnabled(False)
        message = report.message()
        self.dock.show_problem(
            message, installable=report.installable, repair=report.smoke_error is not None
        )
        self._push(message.split(". ")[0] + ".", Qgis.Critical, 0)

    def install_runtime(self) -> None:
        """The dock's Install runtime button: pip in a background task, its log in the dock."""
        if self.install_task is not None or self.dependencies is None:
            return
        self.dock.install_started()
        task = InstallRuntimeTask(self.dependencies.python, self._installed)
        task.line.connect(self.dock.add_install_log)
        self.install_task = task
        QgsApplication.taskManager().addTask(task)

    def _installed(self, task: InstallRuntimeTask) -> None:
        """The install ended: on success the plugin enables itself, else the one-line reason."""
        self.install_task = None
        if self.dock is None:  # unloaded meanwhile
            return
        self.dock.install_finished()
        if task.error is not None:
            self.dock.show_problem(f"The runtime was not installed: {task.error}", installable=True)
            self._push(task.error, Qgis.Critical, 0)
            return
        self.dependencies = check_dependencies()
        self._apply(self.dependencies)
        if self.dependencies.ok and task.result is not None:
            self._push(
                f"runtime installed in {task.result.seconds:.0f} s: SNCA is ready", Qgis.Success, 10
            )

    def _push(self, text: str, level: Qgis.MessageLevel, duration: int) -> None:
        """Show ``text`` in the message bar in place of this plugin's previous message."""
        bar = self.iface.messageBar()
        if self._message is not None:
            try:
                bar.popWidget(self._message)
            except RuntimeError:  # closed by the user or timed out: already deleted
                pass
        self._message = bar.createMessage(TITLE, html.escape(text))
        bar.pushWidget(self._message, level, duration)

    def unload(self) -> None:
        """Remove everything initGui added."""
        if self.install_task is not None:
            self.install_task.cancel()
            self.install_task = None
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
