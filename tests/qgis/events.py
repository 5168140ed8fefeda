"""Waiting on Qt: process events until background work (a QgsTask) is over."""

from __future__ import annotations

import time
from collections.abc import Callable

from qgis.core import QgsApplication


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Process Qt events until ``condition()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        QgsApplication.processEvents()
        time.sleep(0.005)
