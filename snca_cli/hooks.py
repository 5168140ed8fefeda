"""The two callables long work takes, so every face (CLI bar, QGIS task) drives it the same way.

* ``progress(done, total)``: called in the caller's thread as work advances.
* ``cancelled()``: polled; when it returns True the work stops and raises
  :class:`snca_cli.errors.Cancelled`, leaving nothing half-written.

:class:`PlainProgress` is the hook for output that is not a terminal: plain lines, now and
then, instead of a bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressHook = Callable[[int, int], None]
CancelHook = Callable[[], bool]
#: ``factory(label)`` gives the progress hook of one labelled part of a job (or None).
ProgressFactory = Callable[[str], ProgressHook | None]

#: Seconds between two progress lines when the output is not a terminal.
PLAIN_PROGRESS_INTERVAL_S = 30.0


class PlainProgress:
    """A progress hook for output that is not a terminal (a log file, a pipe, a CI job): one
    line ``LABEL: DONE/TOTAL (P %), R/s[, INFO]`` every ``interval_s`` seconds, and one at the
    end when an earlier line was written, so long work is never silent there while work that
    ends within the interval writes nothing."""

    def __init__(
        self,
        label: str,
        write: Callable[[str], None],
        unit: str = "tiles",
        interval_s: float = PLAIN_PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.info = ""
        self._write = write
        self._unit = unit
        self._interval = interval_s
        self._clock = clock
        self._started = clock()
        self._last: float | None = None
        self._finished = False

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        final = total > 0 and done >= total
        due = now - (self._started if self._last is None else self._last) >= self._interval
        if self._finished or not (due or (final and self._last is not None)):
            return
        self._last, self._finished = now, final
        elapsed = now - self._started
        rate = f", {done / elapsed:,.1f} {self._unit}/s" if elapsed > 0 and done else ""
        share = f" ({done / total:.0%})" if total else ""
        info = f", {self.info}" if self.info else ""
        self._write(f"{self.label}: {done:,}/{total:,}{share}{rate}{info}")
