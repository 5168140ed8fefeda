"""A plain re-implementation of the training loop of the SNCA+CE authors' public code
(Kang et al., TGRS 2020, ``train_SNCA_CE/main.py``), the baseline of ``train_speed.py``.

As in their code: a torch ``DataLoader`` whose workers open and decode every JPEG from disk at
every step and run torchvision transforms on PIL images (resize, random grey, colour jitter,
horizontal flip, ``ToTensor``, ``Normalize``); a torchvision ResNet-18 with ``FC1`` (512 -> D,
the unit embedding) and ``FC2`` (D -> C, the logits); fp32 NCHW tensors; glibc's default
allocator; a memory bank of one feature per training image whose rows are blended with momentum
after each step (their ``LinearAverage``); the NCA loss of the batch against the bank plus cross
entropy; Nesterov SGD; validation by scikit-learn's ``KNeighborsClassifier(10,
weights="distance")`` on the bank. Only the image size (their 256 px resize becomes
``--image-size``), the loader's workers, torch's threads and the backbone (``--backbone
efficientnet_lite0`` puts our EfficientNet-Lite0 feature extractor in the ResNet's place) are
parameters, so that both loops run on the same machine with the same backbone, batch, loss and
image size.

Run by ``train_speed.py`` in a fresh process (the allocator is process-wide)::

    python benchmarks/authors_loop.py --items items.json --data AID --steps 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

#: torchvision's ImageNet standardisation, as in the authors' ``transforms.Normalize``.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The authors' defaults: SNCA temperature, first memory momentum, kNN neighbours.
TEMPERATURE = 0.05
MEMORY_MOMENTUM = 0.5
KNN_NEIGHBOURS = 10


def train_transform(image_size: int) -> transforms.Compose:
    """The authors' training augmentation, at ``image_size`` instead of 256 px."""
    return transforms.Compose(
        [
            transforms.Resize((image_size, image_size)),
            transforms.RandomGrayscale(p=0.2),
            transforms.ColorJitter(0.4, 0.4, 0.4, 0.4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class SceneFiles(Dataset):
    """``(path, label)`` pairs read from disk at every access, like their
    ``DataGeneratorSplitting``: a dict with the image, its label and its index (the memory
    slot)."""

    def __init__(self, files: list[tuple[str, int]], transform: transforms.Compose) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        path, label = self.files[index]
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        return {"img": self.transform(rgb), "label": label, "idx": index}


BACKBONES = ("resnet18", "efficientnet_lite0")


class EmbeddingNet(nn.Module):
    """Their ``ResNet18_cls``: backbone features -> FC1 (unit embedding) -> FC2 (logits)."""

    def __init__(self, num_classes: int, backbone: str = "resnet18", dim: int = 128) -> None:
        super().__init__()
        if backbone == "resnet18":
            resnet = torchvision.models.resnet18(weights=None)
            resnet.fc = nn.Identity()
            self.encoder: nn.Module = resnet
            features = 512
        elif backbone == "efficientnet_lite0":
            from snca_train.backbones import build_backbone

            lite = build_backbone(backbone, 3, pretrained=False)
            self.encoder, features = lite.module, lite.feature_dim
        else:
            raise ValueError(f"unknown backbone {backbone!r} (choose one of: {BACKBONES})")
        self.fc1 = nn.Linear(features, dim)
        self.fc2 = nn.Linear(dim, num_classes)
        nn.init.kaiming_normal_(self.fc1.weight)
        nn.init.kaiming_normal_(self.fc2.weight)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.fc1(self.encoder(images))
        return F.normalize(raw, dim=1), self.fc2(raw)


class LinearAverage:
    """Their memory bank: N x D features, started uniform in +-1/sqrt(D/3) (not unit length),
    read as ``features @ memory.T / temperature`` and blended after each step."""

    def __init__(self, size: int, dim: int, temperature: float, momentum: float) -> None:
        bound = 1.0 / math.sqrt(dim / 3)
        self.memory = torch.rand(size, dim) * 2 * bound - bound
        self.temperature = temperature
        self.momentum = momentum

    def similarities(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.memory.T / self.temperature

    @torch.no_grad()
    def update(self, features: torch.Tensor, indices: torch.Tensor) -> None:
        mixed = self.memory[indices] * self.momentum + features.detach() * (1 - self.momentum)
        self.memory[indices] = F.normalize(mixed, dim=1)


def nca_loss(
    similarities: torch.Tensor, indices: torch.Tensor, memory_labels: torch.Tensor
) -> torch.Tensor:
    """Their ``NCACrossEntropy`` (margin 0): ``-mean log(sum_same exp / sum_all exp)`` with each
    sample's own memory slot left out; samples without any same-class probability are dropped
    from the sum but not from the batch size, as in their code."""
    weights = torch.exp(similarities)
    weights = weights.scatter(1, indices.view(-1, 1), 0.0)
    labels = memory_labels[indices]
    same = (memory_labels[None, :] == labels[:, None]).float()
    probability = (weights * same).sum(dim=1) / weights.sum(dim=1)
    kept = probability[probability != 0]
    return -kept.log().sum() / len(similarities)


def sklearn_knn_accuracy(
    memory: np.ndarray, memory_labels: np.ndarray, queries: np.ndarray, labels: np.ndarray
) -> float:
    """Their validation: a distance-weighted 10-NN classifier fitted on the memory bank."""
    from sklearn.metrics import accuracy_score
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=KNN_NEIGHBOURS, weights="distance")
    knn.fit(memory, memory_labels)
    return float(accuracy_score(labels, knn.predict(queries)))


@dataclass
class LoopTimes:
    """Seconds of each step (data wait + forward + backward + update) and of the validation
    kNN of the bank against ``validation_queries`` embeddings."""

    step_seconds: list[float]
    batch_size: int
    workers: int
    threads: int
    validation_knn_seconds: float
    validation_queries: int
    memory_size: int


def time_steps(
    files: list[tuple[str, int]],
    num_classes: int,
    image_size: int,
    batch_size: int,
    steps: int,
    workers: int,
    lr: float,
    backbone: str = "resnet18",
    seed: int = 0,
) -> tuple[list[float], LinearAverage, EmbeddingNet]:
    """Run ``steps`` training steps of the authors' loop (cycling through the loader as often as
    needed) and return each step's seconds, the memory and the network."""
    torch.manual_seed(seed)
    loader = DataLoader(
        SceneFiles(files, train_transform(image_size)),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
    )
    model = EmbeddingNet(num_classes, backbone)
    memory = LinearAverage(len(files), 128, TEMPERATURE, MEMORY_MOMENTUM)
    memory_labels = torch.tensor([label for _, label in files], dtype=torch.long)
    optimizer = torch.optim.SGD(
        model.parameters(), lr, momentum=0.9, weight_decay=1e-4, nesterov=True
    )
    model.train()
    seconds: list[float] = []
    while len(seconds) < steps:
        batches = iter(loader)
        started = time.perf_counter()
        for data in batches:
            images, labels, indices = data["img"], data["label"], data["idx"]
            features, logits = model(images)
            snca = nca_loss(memory.similarities(features), indices, memory_labels)
            loss = snca + F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            memory.update(features, indices)
            seconds.append(time.perf_counter() - started)
            if len(seconds) == steps:
                break
            started = time.perf_counter()
    return seconds, memory, model


def run(
    files: list[tuple[str, int]],
    num_classes: int,
    image_size: int,
    batch_size: int,
    steps: int,
    workers: int,
    threads: int,
    lr: float,
    validation_queries: int,
    backbone: str = "resnet18",
) -> LoopTimes:
    """Time the steps, then the validation kNN on the resulting bank."""
    torch.set_num_threads(threads)
    seconds, memory, _ = time_steps(
        files, num_classes, image_size, batch_size, steps, workers, lr, backbone
    )
    bank = memory.memory.numpy()
    labels = np.array([label for _, label in files])
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(bank), validation_queries)
    queries = bank[rows] + rng.normal(0, 0.05, (validation_queries, bank.shape[1]))
    started = time.perf_counter()
    sklearn_knn_accuracy(bank, labels, queries.astype(np.float32), labels[rows])
    knn_seconds = time.perf_counter() - started
    return LoopTimes(
        step_seconds=seconds,
        batch_size=batch_size,
        workers=workers,
        threads=threads,
        validation_knn_seconds=knn_seconds,
        validation_queries=validation_queries,
        memory_size=len(bank),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=Path, required=True, help="JSON: classes, items.")
    parser.add_argument("--data", type=Path, required=True, help="The scene folder.")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="Steps to time (warm-up too).")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--backbone", choices=BACKBONES, default="resnet18")
    parser.add_argument("--validation-queries", type=int, default=1000)
    parser.add_argument("--json", type=Path, required=True, help="Where the timings go.")
    args = parser.parse_args()

    listing = json.loads(args.items.read_text())
    index = {name: i for i, name in enumerate(listing["classes"])}
    files = [(str(args.data / item), index[item.split("/", 1)[0]]) for item in listing["items"]]
    times = run(
        files,
        len(listing["classes"]),
        args.image_size,
        args.batch_size,
        args.steps,
        args.workers,
        args.threads,
        args.lr,
        args.validation_queries,
        args.backbone,
    )
    args.json.write_text(json.dumps(asdict(times), indent=1))


if __name__ == "__main__":
    main()
