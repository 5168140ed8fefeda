"""The training loop: SGD (Nesterov) on SNCA+CE or another loss, validation kNN after each
epoch, ``last.pt``/``best.pt`` checkpoints and a history; ``--resume`` continues exactly.

Every random draw comes from seeded generators (sampling, augmentation, momentum-encoder
shuffling) whose states are saved in each checkpoint together with Python's, NumPy's and
torch's global states, so a run resumed from ``last.pt`` produces the same weights as one that
was never interrupted. With ``--device cuda`` the images, the memory and the network live on the
GPU while those draws stay on the CPU; cuDNN picks its algorithms per run, so GPU runs are
close to, not bit-identical with, each other and the CPU.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from snca_cli.errors import SncaError
from snca_cli.runtime.metrics import knn_accuracy
from snca_train.augment import augment_batch
from snca_train.checkpoint import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    capture_random_state,
    make_checkpoint,
    network_from_checkpoint,
    restore_random_state,
    save_checkpoint,
)
from snca_train.config import TrainConfig
from snca_train.history import write_history
from snca_train.linear_probe import fit_linear_probe
from snca_train.losses.objective import Objective
from snca_train.memory import MemoryBank
from snca_train.momentum_encoder import MomentumEncoder
from snca_train.network import ModelConfig, SceneEmbeddingNet
from snca_train.onnx_init import is_onnx_init, network_from_onnx
from snca_train.progress import make_progress
from snca_train.schedule import learning_rate
from snca_train.speed import configure_for_training, native_bf16, training_device
from snca_train.teacher import teacher_memory
from snca_train.training_data import (
    DeviceImages,
    TrainingData,
    prepare_data,
    read_split_file,
    write_split,
)

#: Images per forward pass when embedding a whole split (no gradients, so larger than training).
EMBED_BATCH = 128
GENERATORS = ("sampling", "augment", "encoder")


@dataclass
class TrainSummary:
    """What a finished run reports."""

    run_dir: Path
    epochs: int
    best_val_knn: float
    best_epoch: int
    seconds: float
    train_images_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / BEST_CHECKPOINT


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A random order of ``n`` samples cut into batches; a last batch of one is dropped (batch
    norm needs two samples)."""
    order = torch.randperm(n, generator=generator)
    batches = list(torch.split(order, batch_size))
    return [batch for batch in batches if len(batch) >= 2]


@torch.no_grad()
def embed_images(
    model: SceneEmbeddingNet, images: DeviceImages, console: Console, description: str
) -> np.ndarray:
    """Unit-length N x D embeddings of a split's images (eval mode, no augmentation)."""
    model.eval()
    parts: list[np.ndarray] = []
    with make_progress(console, transient=True) as progress:
        task = progress.add_task(description, total=len(images), info="")
        for start in range(0, len(images), EMBED_BATCH):
            rows = np.arange(start, min(start + EMBED_BATCH, len(images)))
            embedding, _ = model(images.batch(rows))
            parts.append(embedding.float().cpu().numpy())
            progress.advance(task, len(rows))
    return np.concatenate(parts).astype(np.float32)


def load_training_data(config: TrainConfig, console: Console) -> TrainingData:
    """Scan, split (or read ``config.split_file``) and decode the data of a new run."""
    if config.split_file is None:
        split, split_seed, class_names = None, config.split_seed, None
    else:
        split, split_seed, class_names = read_split_file(Path(config.split_file))
    return prepare_data(
        Path(config.data_dir),
        split_seed,
        config.image_size,
        config.workers,
        config.skip_unreadable,
        console,
        split=split,
        class_names=class_names,
        split_source=f"split file {config.split_file}",
    )


class Trainer:
    """One training run in ``run_dir``: build with :meth:`start` or :meth:`resume`, then
    :meth:`train`."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        data: TrainingData,
        model: SceneEmbeddingNet,
        console: Console,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.data = data
        self.console = console
        self.device = training_device(config.device)
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.model.bf16_backbone = config.precision == "bf16"
        #: Batch norms kept in evaluation mode while training (``config.freeze_batchnorm``).
        self.frozen_norms = [
            layer
            for layer in self.model.modules()
            if config.freeze_batchnorm and isinstance(layer, nn.BatchNorm2d)
        ]
        self.train_images = DeviceImages(data.train, self.device)
        self.val_images = DeviceImages(data.val, self.device)
        if self.model.bf16_backbone and self.device.type == "cpu" and not native_bf16():
            console.print(
                "[yellow]warning:[/] this CPU has no native bfloat16 (AVX512-BF16 or AMX); "
                "--precision bf16 will train slower than fp32"
            )
        self.objective = Objective(config.loss)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
        self.generators = {name: torch.Generator() for name in GENERATORS}
        for offset, name in enumerate(GENERATORS):
            self.generators[name].manual_seed(config.seed * len(GENERATORS) + offset)
        self.labels = torch.from_numpy(data.train.labels).to(self.device)
        self.bank: MemoryBank | None = None
        self.encoder: MomentumEncoder | None = None
        if self.objective.uses_memory and config.memory == "momentum-encoder":
            self.encoder = MomentumEncoder(self.model, config.encoder_momentum)
        self.teacher: torch.Tensor | None = None
        if self.objective.distillation is not None:
            self.teacher = teacher_memory(
                config.backbone,
                self.train_images,
                console,
                config.backbone_size,
                Path(config.weights) if config.weights else None,
            )
            console.print(
                f"distilling toward the frozen ImageNet {config.backbone}: "
                f"{self.teacher.shape[1]}-d teacher vectors of {len(self.teacher)} training "
                f"images, weight {config.loss.distill}"
            )
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best_val_knn = -1.0
        self.best_epoch = 0

    # ----------------------------------------------------------------------------- building

    @classmethod
    def start(
        cls,
        config: TrainConfig,
        run_dir: Path,
        console: Console,
        data: TrainingData | None = None,
    ) -> Trainer:
        """A new run: split and decode the data (unless given), build the network, fill the
        memory, then write ``split.json``."""
        config.validate()
        configure_for_training(config.threads, config.device)
        seed_everything(config.seed)
        if data is None:
            data = load_training_data(config, console)
        model_config = ModelConfig(
            backbone=config.backbone,
            num_classes=len(data.class_names),
            embedding_dim=config.embedding_dim,
            input_bands=data.train.bands,
            image_size=config.image_size,
            backbone_size=config.backbone_size,
        )
        head_kept = True
        if config.init is not None and is_onnx_init(config.init):
            model, head_kept = network_from_onnx(config.init, model_config, data.class_names)
            config = replace(config, freeze_batchnorm=True)
            console.print(
                f"started from {Path(config.init).name}: its batch norms are folded, so they "
                "stay in evaluation mode"
            )
        elif config.init is not None:
            model, head_kept = network_from_checkpoint(config.init, model_config, data.class_names)
        else:
            weights = Path(config.weights) if config.weights else None
            model = SceneEmbeddingNet(model_config, pretrained=config.pretrained, weights=weights)
        trainer = cls(config, run_dir, data, model, console)
        if not head_kept:
            accuracy = fit_linear_probe(trainer.model, trainer.train_images, trainer.labels)
            console.print(
                f"a new class head for {len(data.class_names)} classes, fitted as a linear probe "
                f"on the training images: {accuracy:.0%} of them right"
            )
        if trainer.objective.uses_memory:
            initial = embed_images(
                trainer.model, trainer.train_images, console, "filling the memory"
            )
            trainer.bank = MemoryBank(torch.from_numpy(initial).to(trainer.device), trainer.labels)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_split(run_dir, data)  # last: a run that cannot start leaves no files
        return trainer

    @classmethod
    def resume(cls, checkpoint: dict[str, Any], run_dir: Path, console: Console) -> Trainer:
        """Continue the run saved in ``checkpoint`` exactly where it stopped."""
        config = TrainConfig.from_dict(checkpoint["train_config"])
        config.validate()
        configure_for_training(config.threads, config.device)
        data = prepare_data(
            Path(config.data_dir),
            int(checkpoint["split_seed"]),
            config.image_size,
            config.workers,
            config.skip_unreadable,
            console,
            split=checkpoint["split"],
            class_names=checkpoint["class_names"],
        )
        model_config = ModelConfig.from_dict(checkpoint["model_config"])
        if data.train.bands != model_config.input_bands:
            raise SncaError(
                f"the images of {config.data_dir} have {data.train.bands} band(s), the run's "
                f"network takes {model_config.input_bands}"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        write_split(run_dir, data)
        model = SceneEmbeddingNet(model_config, pretrained=False)
        model.load_state_dict(checkpoint["model_state"], strict=True)
        trainer = cls(config, run_dir, data, model, console)
        trainer.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if checkpoint["memory_state"] is not None:
            trainer.bank = MemoryBank.from_state_dict(checkpoint["memory_state"], trainer.device)
        if trainer.encoder is not None:
            trainer.encoder.load_state_dict(checkpoint["encoder_state"])
        for name, state in checkpoint["generator_states"].items():
            trainer.generators[name].set_state(state)
        restore_random_state(checkpoint["random_state"])
        trainer.epoch = int(checkpoint["epoch"])
        trainer.step = int(checkpoint["step"])
        trainer.history = list(checkpoint["history"])
        trainer.best_val_knn = float(checkpoint["best_val_knn"])
        trainer.best_epoch = int(checkpoint["best_epoch"])
        return trainer

    # ----------------------------------------------------------------------------- training

    @property
    def steps_per_epoch(self) -> int:
        n, size = len(self.data.train), self.config.batch_size
        return n // size + (1 if n % size >= 2 else 0)

    def train_step(self, rows: torch.Tensor, memory_momentum: float) -> dict[str, float]:
        """One SGD step on the training samples ``rows``; returns the loss parts."""
        config = self.config
        total_steps = config.epochs * self.steps_per_epoch
        rate = learning_rate(config.lr, self.step, total_steps, config.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        rows = rows.to(self.device)
        images = augment_batch(
            self.train_images.batch(rows), config.augment, self.generators["augment"]
        ).contiguous(memory_format=torch.channels_last)
        labels = self.labels[rows]
        keys = None
        if self.encoder is not None:
            self.encoder.update(self.model)
            keys = self.encoder.embed(images, self.generators["encoder"])
        self.model.train()
        for layer in self.frozen_norms:
            layer.eval()
        embedding, logits = self.model(images)
        memory = self.bank.features if self.bank is not None else None
        memory_labels = self.bank.labels if self.bank is not None else None
        parts = self.objective(embedding, logits, labels, rows, memory, memory_labels, self.teacher)
        self.optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        self.optimizer.step()
        if self.bank is not None:
            if keys is not None:
                self.bank.replace(rows, keys)
            else:
                self.bank.blend(rows, embedding, memory_momentum)
        self.step += 1
        values = {name: float(value.detach()) for name, value in parts.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise SncaError(
                f"the loss became {values['loss']} at step {self.step}; lower --lr and retry"
            )
        return values

    def train_epoch(self) -> dict[str, Any]:
        """One pass over the training split; returns the epoch's mean loss parts and speed."""
        config = self.config
        mu = config.memory_momentum.value(self.epoch, config.epochs)
        batches = epoch_batches(
            len(self.data.train), config.batch_size, self.generators["sampling"]
        )
        sums: dict[str, float] = {}
        images = 0
        seconds = 0.0
        with make_progress(self.console) as progress:
            task = progress.add_task(
                f"epoch {self.epoch + 1}/{config.epochs}", total=len(batches), info=""
            )
            for rows in batches:
                started = time.perf_counter()
                parts = self.train_step(rows, mu)
                seconds += time.perf_counter() - started
                images += len(rows)
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value * len(rows)
                shown = " ".join(f"{name} {value:.3f}" for name, value in parts.items())
                progress.update(task, advance=1, info=f"{shown} {images / seconds:.0f} img/s")
        record: dict[str, Any] = {name: total / images for name, total in sums.items()}
        total_steps = config.epochs * self.steps_per_epoch
        record.update(
            lr=learning_rate(config.lr, self.step - 1, total_steps, config.schedule),
            memory_momentum=mu if self.bank is not None and self.encoder is None else None,
            train_images=images,
            train_seconds=seconds,
            train_images_per_second=images / seconds,
        )
        return record

    def validate(self) -> float:
        """kNN@k accuracy of the validation split against the training split."""
        train_embedding = embed_images(
            self.model, self.train_images, self.console, "embedding train"
        )
        val_embedding = embed_images(self.model, self.val_images, self.console, "embedding val")
        return knn_accuracy(
            val_embedding,
            self.data.val.labels,
            train_embedding,
            self.data.train.labels,
            self.config.knn_k,
            len(self.data.class_names),
        )

    def checkpoint(self) -> dict[str, Any]:
        """The full state after :attr:`epoch` completed epochs."""
        return make_checkpoint(
            self.model,
            self.data.class_names,
            self.data.split_seed,
            str(Path(self.config.data_dir).resolve()),
            self.epoch,
            train_config=self.config.to_dict(),
            optimizer_state=self.optimizer.state_dict(),
            memory_state=self.bank.state_dict() if self.bank is not None else None,
            encoder_state=self.encoder.state_dict() if self.encoder is not None else None,
            generator_states={name: g.get_state() for name, g in self.generators.items()},
            random_state=capture_random_state(),
            step=self.step,
            history=list(self.history),
            split={name: list(items) for name, items in self.data.split.items()},
            best_val_knn=self.best_val_knn,
            best_epoch=self.best_epoch,
            skipped_images=list(self.data.skipped),
        )

    def train(self, until_epoch: int | None = None) -> TrainSummary:
        """Train the remaining epochs (or up to ``until_epoch`` completed ones, leaving a run to
        be resumed), checkpointing after each and validating after every ``validate_every``-th
        and the last (an epoch not validated records ``None``)."""
        started = time.perf_counter()
        knn_key = f"val_knn{self.config.knn_k}"
        last = self.config.epochs if until_epoch is None else min(until_epoch, self.config.epochs)
        while self.epoch < last:
            epoch_started = time.perf_counter()
            record = self.train_epoch()
            self.epoch += 1
            due = self.epoch % self.config.validate_every == 0 or self.epoch == self.config.epochs
            accuracy = self.validate() if due else None
            record = {"epoch": self.epoch, **record, knn_key: accuracy}
            record["epoch_seconds"] = time.perf_counter() - epoch_started
            self.history.append(record)
            improved = accuracy is not None and accuracy > self.best_val_knn
            if improved:
                self.best_val_knn, self.best_epoch = accuracy, self.epoch
            state = self.checkpoint()
            save_checkpoint(self.run_dir / LAST_CHECKPOINT, state)
            if improved:
                save_checkpoint(self.run_dir / BEST_CHECKPOINT, state)
            write_history(self.run_dir, self.history)
            self.console.print(
                f"epoch {self.epoch}/{self.config.epochs}: loss {record['loss']:.4f}, "
                f"val kNN@{self.config.knn_k} "
                f"{'-' if accuracy is None else f'{accuracy:.4f}'}"
                f"{' (best)' if improved else ''}, "
                f"{record['train_images_per_second']:.1f} img/s"
            )
        images = sum(r["train_images"] for r in self.history)
        train_seconds = sum(r["train_seconds"] for r in self.history)
        return TrainSummary(
            run_dir=self.run_dir,
            epochs=self.epoch,
            best_val_knn=self.best_val_knn,
            best_epoch=self.best_epoch,
            seconds=time.perf_counter() - started,
            train_images_per_second=images / train_seconds if train_seconds else 0.0,
            history=list(self.history),
        )
