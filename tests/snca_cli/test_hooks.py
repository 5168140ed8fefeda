"""PlainProgress: progress as plain lines when the output is not a terminal."""

from __future__ import annotations

from snca_cli.hooks import PlainProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_come_every_interval_and_once_at_the_end() -> None:
    lines: list[str] = []
    clock = FakeClock()
    hook = PlainProgress("scene.tif", lines.append, interval_s=30.0, clock=clock)
    clock.now += 10.0
    hook(320, 1_600)  # 10 s in: none
    clock.now += 22.0
    hook(1_000, 1_600)  # 32 s in: a line
    clock.now += 20.0
    hook(1_300, 1_600)  # 20 s after it: none
    clock.now += 8.0
    hook(1_600, 1_600)  # the end: a line, whenever it comes
    hook(1_600, 1_600)  # once only
    assert lines == [
        "scene.tif: 1,000/1,600 (62%), 31.2 tiles/s",
        "scene.tif: 1,600/1,600 (100%), 26.7 tiles/s",
    ]


def test_work_that_ends_within_the_interval_writes_nothing() -> None:
    lines: list[str] = []
    clock = FakeClock()
    hook = PlainProgress("scene.tif", lines.append, interval_s=30.0, clock=clock)
    clock.now += 5.0
    hook(12, 12)
    assert lines == []


def test_info_and_unit_are_shown() -> None:
    lines: list[str] = []
    clock = FakeClock()
    hook = PlainProgress("epoch 1/28", lines.append, unit="items", interval_s=3.0, clock=clock)
    hook.info = "snca 1.234 ce 0.456"
    clock.now += 4.0
    hook(2, 10)
    assert lines == ["epoch 1/28: 2/10 (20%), 0.5 items/s, snca 1.234 ce 0.456"]
