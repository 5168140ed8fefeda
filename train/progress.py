"""Progress of the trainer (decoding, epochs, embedding passes): rich bars on a terminal, plain
lines now and then (:class:`snca_cli.hooks.PlainProgress`) when the output is a file or a pipe,
so an epoch that takes half an hour is never silent in a log."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from snca_cli.hooks import PlainProgress


class PlainLines:
    """The part of rich's :class:`Progress` the trainer uses, written as plain lines."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._tasks: list[tuple[PlainProgress, int]] = []
        self._done: list[int] = []

    def __enter__(self) -> PlainLines:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def add_task(self, description: str, total: int, **fields: Any) -> int:
        hook = PlainProgress(
            description, lambda line: self._console.print(line, highlight=False), unit="items"
        )
        hook.info = str(fields.get("info", ""))
        self._tasks.append((hook, int(total)))
        self._done.append(0)
        return len(self._tasks) - 1

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, advance: float = 0, info: str | None = None) -> None:
        hook, total = self._tasks[task]
        if info is not None:
            hook.info = info
        self._done[task] += int(advance)
        hook(self._done[task], total)


def make_progress(console: Console, transient: bool = False) -> Progress | PlainLines:
    """A bar with description, count, elapsed and remaining time, and a free ``info`` field;
    plain lines when ``console`` is not a terminal."""
    if not console.is_terminal:
        return PlainLines(console)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=transient,
    )
