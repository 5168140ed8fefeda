"""Ctrl-C at any moment of ``snca``'s start-up ends in one line, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator

import pytest
import typer

from snca_cli import entry
from snca_cli.cli.support import exit_on_error

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


@pytest.fixture
def handlers() -> Iterator[None]:
    """This process's SIGINT handler and the Ctrl-C mark as they were (``main`` sets both)."""
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)
    entry._interrupted = False


def _cli_module(ctrl_c: bool, failing: bool, printed: str = "") -> types.ModuleType:
    """``snca_cli.cli`` as its import leaves it: after a Ctrl-C (``ctrl_c``) or not, failing
    with another error (``failing``: numpy's RecursionError, onnxruntime's ImportError, when a
    Ctrl-C cut an extension's import short) or loaded, having printed ``printed``. Its
    ``main`` records that it ran."""

    class Imported(types.ModuleType):
        ran: list[bool] = []

        def __getattr__(self, name: str) -> object:
            if name != "main":  # the import machinery asks for others (__path__, ...)
                raise AttributeError(name)
            if ctrl_c:
                entry._interrupted = True  # what the Ctrl-C handler records
            sys.stderr.write(printed)
            if failing:
                raise RecursionError("maximum recursion depth exceeded")
            return lambda: self.ran.append(True)

    return Imported("snca_cli.cli")


@pytest.mark.parametrize(
    ("failing", "printed"),
    [
        (True, ""),  # the import failed with another error
        (False, "Traceback (most recent call last):\nKeyboardInterrupt\n"),  # numpy's C code
        # printed the KeyboardInterrupt and the import went on
    ],
    ids=["import failed", "interrupt printed and swallowed"],
)
def test_an_import_a_ctrl_c_cut_short_ends_in_one_line(
    handlers: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failing: bool,
    printed: str,
) -> None:
    cli = _cli_module(ctrl_c=True, failing=failing, printed=printed)
    monkeypatch.setitem(sys.modules, "snca_cli.cli", cli)
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == entry.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"
    assert cli.ran == []  # the command never ran after the Ctrl-C


def test_what_the_imports_print_still_gets_out_without_a_ctrl_c(
    handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = _cli_module(ctrl_c=False, failing=False, printed="a warning printed at import\n")
    monkeypatch.setitem(sys.modules, "snca_cli.cli", cli)
    entry.main()
    assert cli.ran == [True]
    assert capsys.readouterr().err == "a warning printed at import\n"


def test_an_import_error_without_a_ctrl_c_is_not_hidden(
    handlers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "snca_cli.cli", _cli_module(ctrl_c=False, failing=True))
    with pytest.raises(RecursionError):
        entry.main()


def test_a_command_s_error_after_a_ctrl_c_is_the_interruption(
    handlers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    @exit_on_error
    def command() -> None:
        entry._interrupted = True
        raise ImportError("initialization failed")  # onnxruntime's, cut short

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == entry.EXIT_INTERRUPTED
    assert capsys.readouterr().err.startswith("interrupted: stopped cleanly")
