"""A new class head fitted as a linear probe before fine-tuning.

A run started from a trained network (``--init``) on other classes gets a new, random class
head; with few labelled images and a small learning rate it hardly moves in a few epochs, and
its gradients disturb the embedding it started from. Fitting the head first on the frozen
network's features, then fine-tuning everything ("linear probing, then fine-tuning": Kumar et
al., ICLR 2022) starts the run from a head that already separates the classes.

The probe is the CE head of the network (``Linear`` on the un-normalised embedding), fitted by
full-batch L-BFGS on the un-augmented training images with class-balanced cross-entropy and a
small L2 penalty, so that it is deterministic and needs no learning rate.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from snca_train.network import SceneEmbeddingNet
from snca_train.training_data import DeviceImages

#: L-BFGS iterations of the probe.
PROBE_ITERATIONS = 200
#: L2 penalty on the probe's weights (sum of squares), which bounds its logits.
PROBE_L2 = 1e-3
#: Images per forward pass while computing the features.
FEATURE_BATCH = 64


def raw_features(model: SceneEmbeddingNet, images: DeviceImages) -> torch.Tensor:
    """The un-normalised N x D embeddings of ``images`` (evaluation mode, no augmentation)."""
    model.eval()
    parts = []
    with torch.no_grad():  # plain tensors: the probe's autograd reads them
        for start in range(0, len(images), FEATURE_BATCH):
            rows = np.arange(start, min(start + FEATURE_BATCH, len(images)))
            parts.append(model.features(images.batch(rows)).float())
    return torch.cat(parts)


def fit_linear_probe(model: SceneEmbeddingNet, images: DeviceImages, labels: torch.Tensor) -> float:
    """Replace ``model.classifier`` by the probe fitted on ``images`` (class indices
    ``labels``); returns the probe's accuracy on those images."""
    features = raw_features(model, images)
    labels = labels.to(features.device)
    num_classes = model.classifier.out_features
    counts = torch.bincount(labels, minlength=num_classes).float()
    weights = torch.where(counts > 0, len(labels) / (num_classes * counts.clamp(min=1)), 0.0)
    head = nn.Linear(features.shape[1], num_classes).to(features.device)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(
        head.parameters(), lr=1.0, max_iter=PROBE_ITERATIONS, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(features), labels, weight=weights)
        loss = loss + PROBE_L2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        model.classifier.weight.copy_(head.weight)
        model.classifier.bias.copy_(head.bias)
        return float((head(features).argmax(dim=1) == labels).float().mean())
