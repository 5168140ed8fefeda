"""The ``snca`` console script.

Loading the command line (typer, rich, numpy, rasterio, onnxruntime, ...) takes a few seconds:
a Ctrl-C then ends with one line and exit status 130, as it does once a command runs, instead
of a traceback from inside an import. A Ctrl-C that cuts an extension module's import short
can make the import fail with another error (numpy's ``RecursionError``, onnxruntime's
``ImportError: initialization failed``): once a Ctrl-C came, any such error is its
consequence and reported as the interruption (:func:`interrupted`). This module imports
nothing heavy itself.
"""

from __future__ import annotations

import io
import signal
import sys

#: Exit status of an interrupted run (128 + SIGINT), for every command.
EXIT_INTERRUPTED = 130

_interrupted = False


def _on_ctrl_c(signum: int, frame: object) -> None:
    """Python's own Ctrl-C behaviour (KeyboardInterrupt), remembering that it came."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether this ``snca`` process got a Ctrl-C: an error raised after it (an import it cut
    short) is its consequence."""
    return _interrupted


def main() -> None:
    """Load the command line and run it."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored
        signal.signal(signal.SIGINT, _on_ctrl_c)
    # what the imports print is held back: an extension module whose import a Ctrl-C cut
    # short may print the KeyboardInterrupt's traceback itself and go on
    printed = io.StringIO()
    terminal, sys.stderr = sys.stderr, printed
    try:
        from snca_cli.cli import main as run
    except BaseException as exc:
        if not (_interrupted or isinstance(exc, KeyboardInterrupt)):
            terminal.write(printed.getvalue())
            raise
        run = None
    finally:
        sys.stderr = terminal
    if run is None or _interrupted:
        terminal.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    terminal.write(printed.getvalue())
    run()
