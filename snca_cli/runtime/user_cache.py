"""snca's folder in the user's cache: what can be thrown away at any time and recomputed.

``$SNCA_CACHE_DIR`` when set; otherwise ``%LOCALAPPDATA%\\snca\\Cache`` on Windows,
``~/Library/Caches/snca`` on macOS and ``$XDG_CACHE_HOME/snca`` (default ``~/.cache/snca``)
elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Environment variable naming snca's cache folder (overrides the platform's).
CACHE_ENV = "SNCA_CACHE_DIR"


def cache_folder() -> Path:
    """snca's cache folder (not created here)."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:
        return Path(chosen)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "snca" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "snca"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # a relative one: unset
    return base / "snca"
