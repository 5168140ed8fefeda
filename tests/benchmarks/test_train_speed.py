"""The pure parts of benchmarks/train_speed.py: medians, ratios, the glibc-default environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_speed import (
    SideSpeed,
    as_arguments,
    glibc_default_env,
    median_images_per_second,
    side_speed,
)


def test_median_leaves_out_the_warmup_steps():
    # timed steps 2, 4, 3 -> median 3 s -> 64 / 3 images/s
    ips, median, count = median_images_per_second([10.0, 2.0, 4.0, 3.0], 64, warmup=1)
    assert (median, count) == (3.0, 3)
    assert ips == pytest.approx(64 / 3)


def test_median_of_an_even_count_averages_the_middle_two():
    ips, median, count = median_images_per_second([1.0, 2.0, 4.0], 32, warmup=1)
    assert (median, count, ips) == (3.0, 2, pytest.approx(32 / 3))


def test_no_timed_step_left_is_an_error():
    with pytest.raises(ValueError, match="no step left"):
        median_images_per_second([1.0, 2.0], 64, warmup=2)


def test_glibc_default_env_drops_only_the_malloc_tuning():
    env = {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "1", "PATH": "/bin", "X": "MALLOC_"}
    assert glibc_default_env(env) == {"PATH": "/bin", "X": "MALLOC_"}
    assert "MALLOC_ARENA_MAX" in env  # the input is left alone


def test_side_speed_reads_a_side_report():
    times = {"step_seconds": [9.0, 0.5, 0.5, 1.5], "batch_size": 16, "validation_knn_seconds": 0.2}
    assert side_speed("ours", times, warmup=1) == SideSpeed("ours", 32.0, 0.5, 3, 0.2)


def test_arguments_of_options_in_order():
    options = {"--steps": 12, "--data": Path("/d/aid"), "--lr": 0.01}
    assert as_arguments(options) == ["--steps", "12", "--data", "/d/aid", "--lr", "0.01"]
