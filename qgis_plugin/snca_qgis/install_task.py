"""The dock's Install runtime button as a ``QgsTask``: pip runs in the background, its log
reaches the dock line by line, and Cancel stops it with nothing installed."""

from __future__ import annotations

from collections.abc import Callable

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .installer import InstallError, InstallResult, install_runtime


class InstallRuntimeTask(QgsTask):
    """Install snca's runtime with ``python``'s pip (:func:`installer.install_runtime`).

    ``line`` carries pip's output to the main thread; after the run ``on_done(task)`` is called
    there, with ``result`` (an :class:`InstallResult`) or ``error`` (one line) set.
    """

    line = pyqtSignal(str)

    def __init__(self, python: str, on_done: Callable[[InstallRuntimeTask], None]) -> None:
        super().__init__("Installing SNCA's runtime", QgsTask.CanCancel)
        self.python = python
        self._on_done = on_done
        self.result: InstallResult | None = None
        self.error: str | None = None

    def run(self) -> bool:
        """The install, in a worker thread; never raises."""
        try:
            self.result = install_runtime(
                self.python, log=self.line.emit, cancelled=self.isCanceled
            )
        except InstallError as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # an unexpected failure: one line, QGIS stays up
            self.error = f"unexpected {type(exc).__name__}: {exc}"
            return False
        return True

    def finished(self, result: bool) -> None:
        """In the main thread, once ``run`` returned (or the task was cancelled unstarted)."""
        if not result and self.error is None:
            self.error = "cancelled: nothing was installed"
        self._on_done(self)
