"""The ``snca`` console script.

Loading the command line (typer, rich, numpy, rasterio, onnxruntime, ...) takes a few seconds:
a Ctrl-C then ends with one line and exit status 130, as it does once a command runs, instead
of a traceback from inside an import. This module imports nothing heavy itself.
"""

from __future__ import annotations

import sys

#: Exit status of an interrupted run (128 + SIGINT), for every command.
EXIT_INTERRUPTED = 130


def main() -> None:
    """Load the command line and run it."""
    try:
        from snca_cli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    run()
