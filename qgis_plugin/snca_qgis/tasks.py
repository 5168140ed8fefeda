"""Background work for the dock: a ``QgsTask`` that runs one snca call with progress and cancel.

The snca call receives the task's hooks (``progress(done, total)`` and ``cancelled()``), so the
QGIS task manager shows its progress and its cancel button stops it; snca writes every output
atomically, so a cancelled or failed task leaves no file behind.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from qgis.core import Qgis, QgsMessageLog, QgsTask

from snca_cli.errors import Cancelled, SncaError, first_line
from snca_cli.hooks import CancelHook, ProgressHook

#: Where unexpected errors are logged (View > Panels > Log Messages).
LOG_TAG = "SNCA"

Work = Callable[[ProgressHook, CancelHook], Any]


class SncaTask(QgsTask):
    """Run ``work(progress, cancelled)`` in QGIS's task manager.

    After the run, in the main thread, ``on_done(task)`` is called; the task then holds
    ``result`` (what ``work`` returned), or ``error`` (one line), or ``was_cancelled``.
    """

    def __init__(
        self, description: str, work: Work, on_done: Callable[[SncaTask], None] | None = None
    ) -> None:
        super().__init__(description, QgsTask.CanCancel)
        self._work = work
        self._on_done = on_done
        self.result: Any = None
        self.error: str | None = None
        self.was_cancelled = False
        #: Which project the task was started in (the controller's count of closed projects).
        self.project_generation = 0

    def run(self) -> bool:
        """The work, in a worker thread; never raises."""
        try:
            self.result = self._work(self._report, self.isCanceled)
        except Cancelled:
            # a cancel that left nothing behind is not a failure: QGIS would say "Task failed"
            self.was_cancelled = True
            return True
        except SncaError as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # anything else is a bug: keep QGIS alive, log the traceback
            self.error = f"unexpected {type(exc).__name__}: {first_line(exc)}"
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            return False
        return True

    def detach(self) -> None:
        """Forget ``on_done`` (the dock it updates is going away) and cancel the task."""
        self._on_done = None
        self.cancel()

    def _report(self, done: int, total: int) -> None:
        self.setProgress(100.0 * done / total if total else 100.0)

    def finished(self, result: bool) -> None:
        """Called by QGIS in the main thread once ``run`` returned (or the task was cancelled
        before it started)."""
        if not result and self.error is None:
            self.was_cancelled = True
        if self._on_done is not None:
            self._on_done(self)
