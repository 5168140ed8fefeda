"""The benchmark scripts live in ``benchmarks/`` and import each other as top-level modules
(they are run as ``python benchmarks/<script>.py``); their tests import them the same way."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
