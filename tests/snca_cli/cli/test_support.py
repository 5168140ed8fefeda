"""The command wrapper's last line after a signal: it gets out even when the signal landed
inside a rich print."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.cli.support import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    error_console,
    exit_on_error,
)


@pytest.fixture
def print_cut_short() -> Iterator[None]:
    """rich's error console as a signal inside its print leaves it: its buffer entered and
    never left, so it keeps every later line to itself."""
    error_console._enter_buffer()
    yield
    error_console._buffer_index = 0
    del error_console._buffer[:]


@pytest.mark.parametrize(
    ("signal_error", "code", "line"),
    [
        (KeyboardInterrupt, EXIT_INTERRUPTED, "interrupted: stopped cleanly"),
        (Terminated, EXIT_TERMINATED, "terminated: stopped cleanly"),
    ],
)
def test_the_line_of_a_stopped_run_gets_out_after_a_print_cut_short(
    print_cut_short: None,
    capsys: pytest.CaptureFixture[str],
    signal_error: type[BaseException],
    code: int,
    line: str,
) -> None:
    @exit_on_error
    def command() -> None:
        raise signal_error()

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == code
    assert capsys.readouterr().err.startswith(line)


def test_a_ctrl_c_outside_a_command_s_own_handling_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Typer turns it into exit 130 with nothing on stderr (1.25 s into `index build`)
    def interrupted(self: object, ctx: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(TyperGroup, "invoke", interrupted)
    result = CliRunner().invoke(app, ["info", "m.onnx"])
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.stderr == "interrupted\n"
