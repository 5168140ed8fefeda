"""Ctrl-C at any moment of ``snca``'s start-up ends in one line, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

#: Seconds after the start at which SIGINT arrives: while Python starts, while the command line
#: loads its modules, and while (or after) ``snca --help`` runs.
DELAYS_S = (0.05, 0.2, 0.4, 0.7, 1.0, 1.5, 2.5)
START = "import sys; sys.argv = ['snca', '--help']; from snca_cli.entry import main; main()"


@pytest.mark.slow
@pytest.mark.parametrize("delay", DELAYS_S)
def test_ctrl_c_while_loading_is_one_line(delay: float) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", START],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    if process.returncode == 0:  # --help was done before the signal came
        assert lines == []
    elif process.returncode == -signal.SIGINT:  # before Python handles signals: no output
        assert lines == []
    else:
        assert process.returncode == 130, stderr
        assert len(lines) == 1 and lines[0].startswith("interrupted"), stderr
