"""How many CPU cores this process may use (one definition for every part that sizes threads or
processes by it: cluster workers, training threads, the shards searched at once)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this system (macOS, Windows)
        return os.cpu_count() or 1
