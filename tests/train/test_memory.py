"""The memory bank update, the momentum schedule and the momentum encoder."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.errors import SncaError  # noqa: E402
from snca_train.memory import MemoryBank, MomentumSchedule  # noqa: E402
from snca_train.momentum_encoder import MomentumEncoder  # noqa: E402
from snca_train.run import even_schedule  # noqa: E402


def test_bank_blend_follows_its_formula():
    bank = MemoryBank(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), torch.tensor([0, 1, 1]))
    bank.blend(torch.tensor([0, 2]), torch.tensor([[0.0, 1.0], [-0.8, 0.6]]), momentum=0.75)
    # row 0: 0.75 * (1, 0) + 0.25 * (0, 1) = (0.75, 0.25) -> / sqrt(0.625)
    # row 2: 0.75 * (0.6, 0.8) + 0.25 * (-0.8, 0.6) = (0.25, 0.75) -> / sqrt(0.625)
    norm = np.sqrt(0.625)
    expected = [[0.75 / norm, 0.25 / norm], [0.0, 1.0], [0.25 / norm, 0.75 / norm]]
    assert bank.features.numpy() == pytest.approx(np.array(expected), abs=1e-6)


def test_bank_replace_normalises_and_keeps_other_rows():
    bank = MemoryBank(torch.eye(3), torch.tensor([0, 1, 2]))
    bank.replace(torch.tensor([1]), torch.tensor([[3.0, 0.0, 4.0]]))
    assert bank.features.numpy() == pytest.approx(np.array([[1, 0, 0], [0.6, 0, 0.8], [0, 0, 1]]))


def test_bank_state_round_trip():
    bank = MemoryBank(torch.randn(5, 4), torch.arange(5))
    state = bank.state_dict()
    assert state["features"].data_ptr() != bank.features.data_ptr()  # a copy, on the CPU
    copy = MemoryBank.from_state_dict(state, torch.device("cpu"))
    assert torch.equal(copy.features, bank.features) and torch.equal(copy.labels, bank.labels)
    state["features"].zero_()
    assert copy.features.abs().sum() > 0  # the bank owns its rows


def test_default_momentum_schedule_rises_at_thirds():
    schedule = MomentumSchedule()
    assert [schedule.value(epoch, 9) for epoch in range(9)] == [0.5] * 3 + [0.8] * 3 + [0.9] * 3
    assert [schedule.value(epoch, 30) for epoch in (0, 9, 10, 19, 20, 29)] == [
        0.5,
        0.5,
        0.8,
        0.8,
        0.9,
        0.9,
    ]
    assert schedule.value(0, 1) == 0.5


def test_custom_schedule_is_spread_evenly_and_checked():
    schedule = even_schedule((0.2, 0.95))
    assert schedule.starts == (0.0, 0.5)
    assert [schedule.value(epoch, 4) for epoch in range(4)] == [0.2, 0.2, 0.95, 0.95]
    with pytest.raises(SncaError, match=r"\[0, 1\)"):
        even_schedule((0.5, 1.0)).validate()


class Identity(torch.nn.Module):
    """(embedding, logits) = (images flattened, None): each output row is its own input row."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2))

    def forward(self, images):
        return images.flatten(1), None


class CentreInBatch(torch.nn.Module):
    """Subtracts the batch mean, like batch norm: outputs depend on who shares the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2))

    def forward(self, images):
        return images - images.mean(dim=0, keepdim=True), None


def test_encoder_update_is_the_exponential_moving_average():
    online = torch.nn.Linear(3, 2)
    encoder = MomentumEncoder(online, momentum=0.9)
    before = [p.detach().clone() for p in encoder.network.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    encoder.update(online)
    for ema, old, new in zip(
        encoder.network.parameters(), before, online.parameters(), strict=True
    ):
        assert torch.allclose(ema, 0.9 * old + 0.1 * new, atol=1e-7)
        assert not ema.requires_grad
    encoder.update(online)  # theta' = 0.9 * (0.9 old + 0.1 new) + 0.1 new
    for ema, old, new in zip(
        encoder.network.parameters(), before, online.parameters(), strict=True
    ):
        assert torch.allclose(ema, 0.81 * old + 0.19 * new, atol=1e-6)


def test_encoder_features_come_back_in_batch_order():
    encoder = MomentumEncoder(Identity())
    images = torch.arange(24, dtype=torch.float32).view(8, 3)
    got = encoder.embed(images, torch.Generator().manual_seed(1))
    assert torch.equal(got, images)


def test_encoder_normalises_each_sample_within_a_shuffled_half_batch():
    encoder = MomentumEncoder(CentreInBatch(), groups=2)
    images = torch.tensor([[1.0], [2.0], [4.0], [8.0], [16.0], [32.0], [64.0], [128.0]])
    got = encoder.embed(images, torch.Generator().manual_seed(0))
    group_means = (images - got).flatten()  # each row's offset is the mean of its group
    means, counts = torch.unique(group_means, return_counts=True)
    assert counts.tolist() == [4, 4]
    assert not torch.allclose(means, images.mean())  # not the statistics of the whole batch
    members = [set(images.flatten()[group_means == m].tolist()) for m in means]
    assert members != [{1.0, 2.0, 4.0, 8.0}, {16.0, 32.0, 64.0, 128.0}]  # shuffled first
