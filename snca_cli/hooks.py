"""The two callables long work takes, so every face (CLI bar, QGIS task) drives it the same way.

* ``progress(done, total)``: called in the caller's thread as work advances.
* ``cancelled()``: polled; when it returns True the work stops and raises
  :class:`snca_cli.errors.Cancelled`, leaving nothing half-written.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressHook = Callable[[int, int], None]
CancelHook = Callable[[], bool]
#: ``factory(label)`` gives the progress hook of one labelled part of a job (or None).
ProgressFactory = Callable[[str], ProgressHook | None]
