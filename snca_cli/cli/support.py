"""Shared CLI plumbing: consoles, one-line errors, the check for the [train] extra."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from snca_cli.entry import EXIT_INTERRUPTED, interrupted
from snca_cli.errors import TRAIN_EXTRA_HINT, SncaError, debugging, first_line
from snca_cli.hooks import PlainProgress, ProgressFactory, ProgressHook
from snca_cli.runtime.atomic import recovery_warnings
from snca_cli.runtime.cluster import ClusterSpec
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.storage import restored_url

console = Console()
error_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes: bad input (one ``error:`` line), an unexpected error, SIGTERM (Ctrl-C: 130,
#: :data:`snca_cli.entry.EXIT_INTERRUPTED`).
EXIT_BAD_INPUT, EXIT_UNEXPECTED, EXIT_TERMINATED = 2, 1, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so the same cleanup runs."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """While a command runs: SIGTERM handled like Ctrl-C; Python warnings and the GDAL messages
    rasterio logs are kept off stderr (unless ``SNCA_DEBUG`` is set), so a failing command
    prints exactly its one ``error:`` line. (Failures still reach us as exceptions.)"""
    debug = debugging()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    loggers = [logging.getLogger(name) for name in ("rasterio", "pyogrio", "fiona")]
    levels = [logger.level for logger in loggers]
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore")
                for logger in loggers:
                    logger.setLevel(logging.CRITICAL)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def exit_on_error(func: F) -> F:
    """Turn user errors into ``error: <one line>`` with exit code 2, Ctrl-C into exit 130 and
    SIGTERM into exit 143 (both after the same cleanup: nothing half-written is kept); a
    staging folder that recovery left alone is one ``warning:`` line.

    Set ``SNCA_DEBUG=1`` to see the traceback of an unexpected error.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with quiet_libraries(), recovery_warnings(warn):
                return func(*args, **kwargs)
        except SncaError as exc:
            error_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Terminated:
            last_line("terminated: stopped cleanly, no partial output was kept")
            raise typer.Exit(EXIT_TERMINATED) from None
        except KeyboardInterrupt:
            last_line("interrupted: stopped cleanly, no partial output was kept")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if interrupted():  # the error of an import or a call the Ctrl-C cut short
                last_line("interrupted: stopped cleanly, no partial output was kept")
                raise typer.Exit(EXIT_INTERRUPTED) from None
            if debugging():
                raise
            message = first_line(exc)
            error_console.print(
                f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(message)} "
                "(set SNCA_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_UNEXPECTED) from None

    return wrapper  # type: ignore[return-value]


_stop_lines = 0


def last_line(line: str) -> None:
    """The line of a run stopped by a signal, written straight to stderr: the signal can land
    inside a rich print, which then keeps every later line buffered (a Ctrl-C 1.25 s into
    `index build` exited 130 with nothing on stderr)."""
    global _stop_lines
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()
    _stop_lines += 1


def stop_lines() -> int:
    """How many lines of stopped runs :func:`last_line` wrote in this process (Typer ends a
    Ctrl-C that lands outside a command's own handling with exit 130 and no line)."""
    return _stop_lines


def require_train_extra() -> None:
    """Raise SncaError naming the install command when torch is not importable."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SncaError(TRAIN_EXTRA_HINT) from None


def is_interactive() -> bool:
    return sys.stderr.isatty()


class TilesPerSecondColumn(ProgressColumn):
    """Tiles per second of a task."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f} tiles/s", style="cyan")


@contextlib.contextmanager
def tile_progress(description: str, transient: bool = True) -> Iterator[ProgressHook]:
    """A rich progress bar on stderr for tile work, or plain lines now and then when stderr is
    not a terminal; yields the ``progress(done, total)`` hook that the library functions
    (classify, index build, demo) call."""
    if not is_interactive():
        yield PlainProgress(description, say)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TilesPerSecondColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=error_console, transient=transient) as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


@contextlib.contextmanager
def progress_bars(enabled: bool = True) -> Iterator[ProgressFactory]:
    """A factory of labelled progress hooks on stderr, ``factory(label) -> hook``, for library
    functions that report several parts (evaluation: train images, test images): rich bars,
    or plain lines when stderr is not a terminal; with ``enabled`` False it gives no hooks."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with contextlib.ExitStack() as stack:

        def factory(label: str) -> ProgressHook | None:
            if not enabled:
                return None
            if not is_interactive():
                return PlainProgress(label, say, unit="items")
            bar = stack.enter_context(Progress(*columns, console=error_console))
            task = bar.add_task(label, total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return progress

        yield factory


def model_line(model: OnnxModel) -> None:
    """The run's first line: the model, its tiles and what runs it (provider, precision)."""
    meta = model.metadata
    console.print(
        f"model [bold]{escape(model.path.name)}[/]: {meta.num_classes} classes, "
        f"{meta.tile_size} px tiles, {meta.input_bands} bands; provider [bold]"
        f"{model.provider_name}[/], {escape(model.choice.describe())}",
        soft_wrap=True,
    )


def recheck_line(model: OnnxModel) -> None:
    """After an int8 run (in this process or on a cluster's workers): how many tiles were
    re-checked in fp32."""
    if model.precision == "int8" and model.tiles_run:
        say(
            f"int8: {model.tiles_rechecked:,} of {model.tiles_run:,} tiles "
            f"({model.tiles_rechecked / model.tiles_run:.1%}) re-checked in fp32"
        )


def say(line: str) -> None:
    """A line for the user on stderr (not part of a command's results); names from data in it
    are shown as they are, never read as markup."""
    error_console.print(line, highlight=False, soft_wrap=True, markup=False)


def warn(line: str) -> None:
    """A task's warning line on stderr, as ``warning: LINE`` (the same line the dock and
    Processing show); names from data in it are shown as they are, never read as markup."""
    error_console.print(f"warning: {line}", highlight=False, soft_wrap=True, markup=False)


def cluster_run(
    workers: int,
    address: str | None,
    threads: int,
    connect_timeout: float,
    unit_tiles: str,
    work_dir: str | None,
) -> tuple[ClusterSpec, dict[str, Any]]:
    """The cluster of ``--workers``/``--cluster`` (``--threads`` onnxruntime threads per worker,
    1 by default: one single-threaded session per core is the fastest layout) and the
    :class:`snca_cli.tasks.units.RunOptions` fields of ``--unit-tiles`` and ``--work-dir``."""
    spec = ClusterSpec(
        workers=workers,
        address=address,
        threads_per_worker=threads or 1,
        connect_timeout_s=connect_timeout,
    )
    tiles = parse_count(unit_tiles, "--unit-tiles")
    if tiles < 1:
        raise SncaError(f"--unit-tiles must be at least 1 tile; got {unit_tiles!r}")
    return spec, {"unit_tiles": tiles, "work_dir": restored_url(work_dir) if work_dir else None}


def parse_count(text: str, option: str) -> int:
    """A tile count as typed: ``5000000``, ``5M``, ``250k`` (0 allowed)."""
    value = text.strip().lower().replace("_", "").replace(",", "")
    factor = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(value[-1:], 1)
    number = value[:-1] if factor > 1 else value
    try:
        count = float(number) * factor
    except ValueError:
        raise SncaError(f"{option} takes a tile count such as 5M or 250k; got {text!r}") from None
    if not (count >= 0 and count == int(count)):
        raise SncaError(f"{option} must be a whole number of tiles, 0 or more; got {text!r}")
    return int(count)
