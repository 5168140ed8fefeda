"""The trainer: exact resume, checkpoints, and the run's records."""

import json

import pytest
from rich.console import Console

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.errors import SncaError  # noqa: E402
from snca_train.checkpoint import CHECKPOINT_FORMAT, check_architecture, load_model, read_checkpoint  # noqa: E402
from snca_train.config import TrainConfig  # noqa: E402
from snca_train.losses.objective import LossConfig  # noqa: E402
from snca_train.network import ModelConfig  # noqa: E402
from snca_train.trainer import Trainer  # noqa: E402
from tests.helpers.scenes import make_scene_folder  # noqa: E402

QUIET = Console(quiet=True)


def tiny_config(data_dir, **changes) -> TrainConfig:
    values = dict(
        data_dir=str(data_dir),
        backbone="resnet18",
        image_size=32,
        embedding_dim=16,
        epochs=2,
        batch_size=8,
        pretrained=False,
        threads=1,
        workers=2,
    )
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_scene_folder(tmp_path_factory.mktemp("scenes"), per_class=8)


def without_timings(history):
    return [{k: v for k, v in r.items() if "second" not in k} for r in history]


@pytest.mark.slow
@pytest.mark.parametrize("memory", ["bank", "momentum-encoder"])
def test_resumed_run_matches_an_uninterrupted_one(tmp_path, scenes, memory):
    config = tiny_config(scenes, memory=memory)
    straight = Trainer.start(config, tmp_path / "straight", QUIET)
    straight.train()

    interrupted = Trainer.start(tiny_config(scenes, memory=memory), tmp_path / "split", QUIET)
    interrupted.train(until_epoch=1)
    checkpoint = read_checkpoint(tmp_path / "split")
    assert checkpoint["epoch"] == 1
    resumed = Trainer.resume(checkpoint, tmp_path / "split", QUIET)
    resumed.train()

    assert resumed.epoch == straight.epoch == 2 and resumed.step == straight.step
    expected, got = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert torch.equal(straight.bank.features, resumed.bank.features)
    momenta = [s["momentum_buffer"] for s in straight.optimizer.state_dict()["state"].values()]
    resumed_momenta = [
        s["momentum_buffer"] for s in resumed.optimizer.state_dict()["state"].values()
    ]
    assert all(torch.equal(a, b) for a, b in zip(momenta, resumed_momenta, strict=True))
    if memory == "momentum-encoder":
        for key, value in straight.encoder.state_dict().items():
            assert torch.equal(value, resumed.encoder.state_dict()[key]), key
    assert without_timings(straight.history) == without_timings(resumed.history)
    for name, generator in straight.generators.items():
        assert torch.equal(generator.get_state(), resumed.generators[name].get_state())


@pytest.mark.slow
def test_a_distilled_run_records_its_term_and_resumes_exactly(tmp_path, scenes):
    def config():
        return tiny_config(
            scenes, backbone="efficientnet_lite0", loss=LossConfig(distill=0.5), epochs=2
        )

    straight = Trainer.start(config(), tmp_path / "straight", QUIET)
    # the teacher: the frozen ImageNet Lite0's several-stage vector of every training image
    assert straight.teacher.shape == (len(straight.data.train), 80 + 112 + 192 + 1280)
    straight.train()
    interrupted = Trainer.start(config(), tmp_path / "split", QUIET)
    interrupted.train(until_epoch=1)
    resumed = Trainer.resume(read_checkpoint(tmp_path / "split"), tmp_path / "split", QUIET)
    assert torch.equal(resumed.teacher, straight.teacher)
    resumed.train()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert without_timings(straight.history) == without_timings(resumed.history)
    assert all(record["distill"] > 0 for record in straight.history)
    parts = straight.history[0]
    assert parts["loss"] == pytest.approx(parts["snca"] + parts["ce"] + 0.5 * parts["distill"])


@pytest.mark.parametrize("memory", ["bank", "momentum-encoder"])
def test_bf16_run_trains_the_backbone_in_bfloat16_and_resumes_so(tmp_path, scenes, memory):
    trainer = Trainer.start(tiny_config(scenes, memory=memory, precision="bf16"), tmp_path, QUIET)
    networks = [trainer.model] + ([trainer.encoder.network] if trainer.encoder else [])
    dtypes = []
    for network in networks:
        network.backbone.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    trainer.train(until_epoch=1)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert trainer.bank.features.dtype == torch.float32
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint["train_config"]["precision"] == "bf16"
    resumed = Trainer.resume(checkpoint, tmp_path, QUIET)
    assert resumed.model.bf16_backbone is True
    if memory == "momentum-encoder":
        assert resumed.encoder.network.bf16_backbone is True
    # the exported network is built fresh from the checkpoint: fp32
    assert load_model(tmp_path / "last.pt")[0].bf16_backbone is False


def test_run_folder_records(tmp_path, scenes):
    run = tmp_path / "run"
    summary = Trainer.start(
        tiny_config(scenes, epochs=1, loss=LossConfig(loss="snca")), run, QUIET
    ).train()
    checkpoint = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["format"] == CHECKPOINT_FORMAT
    assert checkpoint["class_names"] == ["fields", "roofs", "water"]
    assert checkpoint["model_config"] == ModelConfig("resnet18", 3, 16, 3, 32).to_dict()
    assert checkpoint["epoch"] == 1 and checkpoint["image_size"] == 32
    assert checkpoint["split_seed"] == 0 and checkpoint["data_dir"] == str(scenes.resolve())
    assert checkpoint["memory_state"]["features"].shape == (15, 16)  # 5 train images per class
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in history] == [1]
    assert set(history[0]) >= {"loss", "snca", "lr", "memory_momentum", "val_knn10"}
    assert history[0]["val_knn10"] == summary.best_val_knn == checkpoint["best_val_knn"]
    assert (run / "history.png").stat().st_size > 1000

    model, loaded = load_model(run / "best.pt")
    assert not model.training and loaded["epoch"] == 1
    # the same seed gives the same network again, and best.pt holds it
    again = tiny_config(scenes, epochs=1, loss=LossConfig(loss="snca"))
    reference = Trainer.start(again, tmp_path / "again", QUIET)
    reference.train()
    reference.model.eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(images)[0], reference.model(images)[0], atol=1e-5)


def test_validation_every_n_epochs_and_after_the_last(tmp_path, scenes):
    config = tiny_config(scenes, epochs=3, validate_every=2, loss=LossConfig(loss="ce"))
    summary = Trainer.start(config, tmp_path, QUIET).train()
    history = json.loads((tmp_path / "history.json").read_text())["epochs"]
    validated = [r["epoch"] for r in history if r["val_knn10"] is not None]
    assert validated == [2, 3]
    assert summary.best_epoch in validated
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == summary.best_epoch
    assert (tmp_path / "history.png").stat().st_size > 1000


def test_foreign_files_are_not_checkpoints(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(SncaError, match="is not an snca checkpoint"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(SncaError, match="is not a readable snca checkpoint"):
        load_model(tmp_path / "text.pt")
    with pytest.raises(SncaError, match="does not exist"):
        load_model(tmp_path / "missing")


def test_another_architecture_is_refused():
    checkpoint = {"model_config": ModelConfig("resnet18", 3, 16, 3, 32).to_dict()}
    with pytest.raises(SncaError, match=r"another architecture \(backbone resnet18 vs resnet50\)"):
        check_architecture(checkpoint, ModelConfig("resnet50", 3, 16, 3, 32), "run/last.pt")


@pytest.mark.slow
def test_a_run_started_from_a_checkpoint_holds_its_network(tmp_path, scenes):
    first = Trainer.start(tiny_config(scenes, epochs=1), tmp_path / "first", QUIET)
    first.train()
    stored = read_checkpoint(tmp_path / "first")["model_state"]
    config = tiny_config(scenes, init=str(tmp_path / "first"), backbone_size=48, lr=0.001)
    second = Trainer.start(config, tmp_path / "second", QUIET)
    assert second.model.config.backbone_size == 48 and second.model.config.image_size == 32
    for key, value in second.model.state_dict().items():
        assert torch.equal(value, stored[key]), key
    # the memory is filled afresh, by the started network seeing 48 px
    with torch.inference_mode():
        second.model.eval()
        embedding, _ = second.model(second.train_images.batch(torch.arange(4)))
    torch.testing.assert_close(second.bank.features[:4], embedding)
    second.train()
    assert read_checkpoint(tmp_path / "second")["model_config"]["backbone_size"] == 48


def test_a_checkpoint_of_another_network_cannot_start_a_run(tmp_path, scenes):
    Trainer.start(tiny_config(scenes, epochs=1), tmp_path / "first", QUIET).train()
    wider = tiny_config(scenes, init=str(tmp_path / "first"), embedding_dim=8)
    with pytest.raises(SncaError, match=r"holds another network \(embedding_dim 16 vs 8\)"):
        Trainer.start(wider, tmp_path / "second", QUIET)
    assert not (tmp_path / "second").exists()
    both = tiny_config(scenes, init=str(tmp_path / "first"), weights="weights.pt")
    with pytest.raises(SncaError, match="--init and --weights"):
        both.validate()
