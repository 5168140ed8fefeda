"""Every ``--loss`` drives a small synthetic problem to a perfect kNN score.

Four classes differ in 2 of 24 input dimensions and are buried in noise in the other 22, so the
raw inputs' kNN accuracy is poor; a small network trained with the loss must find the two
informative dimensions.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.runtime.metrics import knn_accuracy  # noqa: E402
from snca_train.losses.objective import LOSSES, LossConfig, Objective  # noqa: E402
from snca_train.memory import MemoryBank  # noqa: E402

CLASSES = 4
CENTRES = np.array([[3.0, 3.0], [3.0, -3.0], [-3.0, 3.0], [-3.0, -3.0]])
NOISE_DIMS = 22
NOISE_STD = 4.0
INPUTS = 2 + NOISE_DIMS


def make_points(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(CLASSES), per_class)
    signal = CENTRES[labels] + rng.normal(0.0, 0.5, (len(labels), 2))
    noise = rng.normal(0.0, NOISE_STD, (len(labels), NOISE_DIMS))
    return np.concatenate([signal, noise], axis=1).astype(np.float32), labels


class SmallNet(torch.nn.Module):
    """The shape of SceneEmbeddingNet: features -> embedding -> (unit embedding, logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Identity()
        self.embedding = torch.nn.Linear(INPUTS, 8)
        self.classifier = torch.nn.Linear(8, CLASSES)

    def forward(self, x):
        raw = self.embedding(self.body(x))
        return torch.nn.functional.normalize(raw, dim=1), self.classifier(raw)


def knn10(net, x_query, y_query, x_db, y_db) -> float:
    with torch.no_grad():
        query, _ = net(torch.from_numpy(x_query))
        db, _ = net(torch.from_numpy(x_db))
    return knn_accuracy(query.numpy(), y_query, db.numpy(), y_db, 10, CLASSES)


@pytest.mark.parametrize("loss", [loss for loss in LOSSES if loss != "instance"])
def test_loss_learns_a_perfect_neighbourhood(loss):
    rng = np.random.default_rng(0)
    x_train, y_train = make_points(40, rng)
    x_val, y_val = make_points(10, rng)
    raw = knn_accuracy(
        x_val / np.linalg.norm(x_val, axis=1, keepdims=True),
        y_val,
        x_train / np.linalg.norm(x_train, axis=1, keepdims=True),
        y_train,
        10,
        CLASSES,
    )
    assert raw < 0.75  # the noise hides the classes from a plain kNN

    torch.manual_seed(0)
    net = SmallNet()
    objective = Objective(LossConfig(loss=loss, sigma=0.1))
    optimizer = torch.optim.SGD(
        net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    labels = torch.from_numpy(y_train)
    inputs = torch.from_numpy(x_train)
    bank = None
    if objective.uses_memory:
        with torch.no_grad():
            bank = MemoryBank(net(inputs)[0], labels)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        for rows in torch.split(torch.randperm(len(inputs), generator=generator), 20):
            embedding, logits = net(inputs[rows])
            parts = objective(
                embedding,
                logits,
                labels[rows],
                rows,
                bank.features if bank else None,
                bank.labels if bank else None,
            )
            optimizer.zero_grad()
            parts["loss"].backward()
            optimizer.step()
            if bank is not None:
                bank.blend(rows, embedding, 0.5)
    score = knn10(net, x_val, y_val, x_train, y_train)
    assert score == 1.0, f"{raw=} {score=}"
    expected_parts = {"snca+ce": {"snca", "ce"}, "snca": {"snca"}, "ce": {"ce"}}
    assert set(parts) - {"loss"} == expected_parts.get(loss, {loss})
