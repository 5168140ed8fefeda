"""The configuration of a training run (stored in every checkpoint, reused by ``--resume``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from snca_cli.errors import SncaError
from snca_train.augment import DEFAULT_RECIPE, AugmentConfig, recipe
from snca_train.backbones import BACKBONES
from snca_train.losses.objective import LossConfig
from snca_train.memory import MEMORY_KINDS, MomentumSchedule
from snca_train.momentum_encoder import DEFAULT_ENCODER_MOMENTUM
from snca_train.schedule import SCHEDULES

#: Arithmetic of the backbone during training: ``fp32``, or ``bf16`` (bfloat16 autocast of the
#: backbone; the embedding, the head, the losses and the memory stay fp32).
PRECISIONS = ("fp32", "bf16")
#: Where the network trains: ``cpu``, or ``cuda`` (the first GPU torch sees; the decoded images,
#: the memory and the network all live there, the random draws stay on the CPU).
DEVICES = ("cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything ``snca train`` was asked to do."""

    data_dir: str
    backbone: str = "efficientnet_lite0"
    image_size: int = 224
    backbone_size: int | None = None  # the size the backbone sees (resampled in the network)
    embedding_dim: int = 128
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    loss: LossConfig = field(default_factory=LossConfig)
    memory: str = "bank"
    memory_momentum: MomentumSchedule = field(default_factory=MomentumSchedule)
    encoder_momentum: float = DEFAULT_ENCODER_MOMENTUM
    augment: AugmentConfig = field(default_factory=lambda: recipe(DEFAULT_RECIPE))
    seed: int = 0
    split_seed: int = 0
    split_file: str | None = None  # a split.json to use instead of splitting with split_seed
    pretrained: bool = True
    weights: str | None = None
    init: str | None = None  # a checkpoint or exported .onnx model a new run starts from
    freeze_batchnorm: bool = False  # batch norms stay in evaluation mode (set by an ONNX --init)
    skip_unreadable: bool = False
    workers: int = 4
    threads: int = 0
    precision: str = "fp32"
    device: str = "cpu"
    knn_k: int = 10
    validate_every: int = 1

    def validate(self) -> None:
        """Raise SncaError for any option out of range."""
        if self.backbone not in BACKBONES:
            raise SncaError(
                f"unknown backbone {self.backbone!r} (choose one of: {', '.join(BACKBONES)})"
            )
        positive = {
            "--image-size": self.image_size,
            "--embedding-dim": self.embedding_dim,
            "--epochs": self.epochs,
            "--lr": self.lr,
            "--knn-k": self.knn_k,
            "--validate-every": self.validate_every,
        }
        if self.backbone_size is not None:
            positive["--backbone-size"] = self.backbone_size
        for name, value in positive.items():
            if value <= 0:
                raise SncaError(f"{name} must be positive, not {value}")
        if self.init is not None and self.weights is not None:
            raise SncaError("--init and --weights both choose the starting weights; give one")
        if self.batch_size < 2:
            raise SncaError(f"--batch-size must be at least 2 (batch norm), not {self.batch_size}")
        if self.weight_decay < 0:
            raise SncaError(f"--weight-decay must not be negative, not {self.weight_decay}")
        if self.schedule not in SCHEDULES:
            raise SncaError(
                f"unknown schedule {self.schedule!r} (choose one of: {', '.join(SCHEDULES)})"
            )
        if self.precision not in PRECISIONS:
            raise SncaError(
                f"unknown precision {self.precision!r} (choose one of: {', '.join(PRECISIONS)})"
            )
        if self.device not in DEVICES:
            raise SncaError(f"unknown device {self.device!r} (choose one of: {', '.join(DEVICES)})")
        if self.memory not in MEMORY_KINDS:
            raise SncaError(
                f"unknown memory {self.memory!r} (choose one of: {', '.join(MEMORY_KINDS)})"
            )
        if not 0.0 <= self.encoder_momentum < 1.0:
            raise SncaError(f"the encoder momentum must lie in [0, 1), not {self.encoder_momentum}")
        self.loss.validate()
        self.memory_momentum.validate()
        self.augment.validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output (as stored in a checkpoint)."""
        nested = {
            "loss": LossConfig,
            "memory_momentum": MomentumSchedule,
            "augment": AugmentConfig,
        }
        known = {f.name for f in fields(cls)}
        # stored before the augmentation was configurable: the classic one (field defaults)
        values = {"augment": {}, **values}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise SncaError(f"unknown training option {key!r} in the checkpoint")
            kwargs[key] = nested[key](**value) if key in nested else value
        schedule = kwargs.get("memory_momentum")
        if isinstance(schedule, MomentumSchedule):
            schedule.values, schedule.starts = tuple(schedule.values), tuple(schedule.starts)
        return cls(**kwargs)
