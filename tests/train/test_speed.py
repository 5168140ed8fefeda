"""The CPU speed settings applied when training starts."""

import platform

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.runtime.cores import usable_cores  # noqa: E402
from snca_train.speed import configure_for_training, keep_freed_memory  # noqa: E402


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt() is glibc's")
def test_glibc_keeps_freed_memory():
    assert keep_freed_memory() is True


def test_threads_default_to_every_usable_cpu():
    assert configure_for_training(1) == 1 and torch.get_num_threads() == 1
    assert configure_for_training(0) == usable_cores() == torch.get_num_threads()
