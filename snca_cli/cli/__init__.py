"""The ``snca`` command line: train, evaluate, export, convert, adapt, chips, info, classify,
index, search, demo."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from snca_cli import __version__
from snca_cli.cli.commands import (
    adapt,
    chips,
    classify,
    colours,
    convert,
    demo,
    evaluate,
    export,
    index,
    info,
    search,
    train,
)
from snca_cli.cli.support import EXIT_INTERRUPTED, error_console, last_line, stop_lines


def _is_usage_error(exc: Exception) -> bool:
    """Whether ``exc`` is click's (or Typer's vendored click's) ClickException: the error
    classes differ between Typer versions, their interface does not."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


class OneLineErrors(TyperGroup):
    """The ``snca`` group: a usage error (a mistyped option, a missing argument) is one
    ``error:`` line naming the help command, as every other error is, not a box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        written = stop_lines()
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.Abort:
            last_line("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if not _is_usage_error(exc):
                raise
            message = exc.format_message()  # type: ignore[attr-defined]
            if not message:  # a command run without arguments: its help was shown
                sys.exit(exc.exit_code)  # type: ignore[attr-defined]
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            error_console.print(
                f"[bold red]error:[/] {escape(message)}{hint}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(exc.exit_code)
        if code == EXIT_INTERRUPTED and stop_lines() == written:  # Typer's own silent 130
            last_line("interrupted")
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="snca",
    cls=OneLineErrors,
    help="Remote-sensing scene embeddings (SNCA+CE): train, export to ONNX, classify GeoTIFF "
    "tiles and search similar tiles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"snca {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """snca command line."""


for module in (
    train, evaluate, export, convert, adapt, colours, chips, info, classify, index, search, demo
):  # fmt: skip
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
