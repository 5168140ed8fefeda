"""`snca train` through the command line: a smoke run and every kind of bad input."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.cli import app  # noqa: E402
from tests.helpers.scenes import make_scene_folder  # noqa: E402

runner = CliRunner()
FAST = [
    "--backbone",
    "resnet18",
    "--no-pretrained",
    "--image-size",
    "32",
    "--batch-size",
    "8",
    "--embedding-dim",
    "16",
    "--threads",
    "1",
]


def snca(*args):
    return runner.invoke(app, ["train", *map(str, args)])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch on 3 classes x 8 generated 32 px images: (data folder, run folder, result)."""
    root = tmp_path_factory.mktemp("cli")
    data = make_scene_folder(root / "scenes", per_class=8)
    run = root / "run"
    result = snca(data, *FAST, "--epochs", "1", "--output", run)
    return data, run, result


def test_training_writes_the_run_folder(trained):
    data, run, result = trained
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in run.iterdir()) == [
        "best.pt",
        "history.json",
        "history.png",
        "last.pt",
        "split.json",
    ]
    for name in ("best.pt", "last.pt"):
        checkpoint = torch.load(run / name, map_location="cpu", weights_only=True)
        assert checkpoint["model_config"]["backbone"] == "resnet18"
        assert checkpoint["train_config"]["loss"]["loss"] == "snca+ce"
        assert checkpoint["epoch"] == 1
    split = json.loads((run / "split.json").read_text())
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (15, 3, 6)
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert set(history[0]) >= {"loss", "snca", "ce", "val_knn10", "train_images_per_second"}
    assert "best val kNN@10" in result.output and "images/s" in result.output


def test_resume_continues_a_run_to_more_epochs(trained, tmp_path):
    data, run, _ = trained
    out = tmp_path / "continued"
    result = snca("--resume", run, "--epochs", "2", "--output", out, "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "after epoch 1" in result.output
    checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 2
    assert [r["epoch"] for r in checkpoint["history"]] == [1, 2]


def test_resume_with_another_architecture_is_refused(trained):
    _, run, _ = trained
    result = snca("--resume", run, "--backbone", "efficientnet_lite0")
    assert_one_line_error(result, "another architecture", "resnet18 vs efficientnet_lite0")


def test_resume_with_another_loss_is_refused(trained):
    _, run, _ = trained
    result = snca("--resume", run, "--loss", "triplet")
    assert_one_line_error(result, "was trained with --loss snca+ce, not --loss triplet")
    result = snca("--resume", run, "--memory-momentum", "0.5,0.9")
    assert_one_line_error(result, "--memory-momentum 0.5,0.8,0.9, not --memory-momentum 0.5,0.9")


def test_resume_with_another_augmentation_is_refused(trained):
    _, run, _ = trained
    result = snca("--resume", run, "--augment", "classic")
    assert_one_line_error(result, "was trained with --augment transfer, not --augment classic")
    result = snca("--resume", run, "--blur-sigma", "1")
    assert_one_line_error(result, "--blur-sigma 1.5, not --blur-sigma 1.0")


def test_the_default_transfer_recipe_and_knobs_are_stored_in_the_checkpoint(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=4)
    run = tmp_path / "run"
    result = snca(
        data,
        *FAST,
        "--epochs",
        "1",
        "--validate-every",
        "1",
        "--crop-scale",
        "0.5",
        "--output",
        run,
    )
    assert result.exit_code == 0, result.output
    stored = torch.load(run / "last.pt", map_location="cpu", weights_only=True)["train_config"]
    augment = stored["augment"]
    assert augment["recipe"] == "transfer"
    assert augment["crop_scale"] == 0.5  # the knob on top of the recipe's 0.3
    assert (augment["resolution_factor"], augment["blur_sigma"]) == (4.0, 1.5)
    assert augment["brightness"] == 0.5


def test_bad_augmentation_options_are_one_line_errors(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=4)
    result = snca(data, *FAST, "--augment", "strong", "--output", tmp_path / "run")
    assert_one_line_error(result, "unknown augmentation 'strong'", "classic, transfer")
    result = snca(data, *FAST, "--crop-scale", "1.5", "--output", tmp_path / "run")
    assert_one_line_error(result, "--crop-scale must lie in (0, 1], not 1.5")


def test_existing_output_needs_force(trained):
    data, run, _ = trained
    result = snca(data, *FAST, "--epochs", "1", "--output", run)
    assert_one_line_error(result, "exists and is not empty", "--force")


@pytest.mark.parametrize("where", ["idx", "idx/run"])
def test_a_run_folder_in_an_index_is_refused(trained, tmp_path, where):
    # --force removed the files of an earlier run in the folder and wrote the checkpoints
    # among the index's files
    data, _, _ = trained
    index = tmp_path / "idx"
    index.mkdir()
    marks = {"manifest.json": b"{}", "tiles.npy": b"x"}
    for name, content in marks.items():
        (index / name).write_bytes(content)
    result = snca(data, *FAST, "--epochs", "1", "--output", tmp_path / where, "--force")
    assert_one_line_error(result, "an snca index")
    assert {p.name: p.read_bytes() for p in index.iterdir()} == marks


def test_missing_data_folder(tmp_path):
    result = snca(tmp_path / "nowhere", *FAST, "--output", tmp_path / "run")
    assert_one_line_error(result, "does not exist")
    assert not (tmp_path / "run").exists()


def test_empty_data_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    result = snca(tmp_path / "empty", *FAST, "--output", tmp_path / "run")
    assert_one_line_error(result, "holds no images")


def test_class_too_small_to_split(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=4)
    for extra in sorted((data / "water").iterdir())[2:]:
        extra.unlink()
    result = snca(data, *FAST, "--output", tmp_path / "run")
    assert_one_line_error(result, "class water has 2 image(s)", "at least 3")


def test_unreadable_image(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=6)
    (data / "roofs" / "roofs_03.png").write_bytes(b"\x89PNG broken")
    result = snca(data, *FAST, "--output", tmp_path / "run")
    assert_one_line_error(result, "1 unreadable image(s)", "roofs_03.png", "--skip-unreadable")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--loss", "arcface", "unknown loss 'arcface'"),
        ("--backbone", "vgg", "unknown backbone 'vgg'"),
        ("--memory", "queue", "unknown memory 'queue'"),
        ("--sigma", "0", "--sigma must be positive"),
        ("--distill", "-1", "--distill must not be negative"),
        ("--distill-temperature", "0", "--distill-temperature must be positive"),
        ("--memory-momentum", "0.5,x", "--memory-momentum expects numbers"),
        ("--batch-size", "1", "--batch-size must be at least 2"),
        ("--precision", "fp16", "unknown precision 'fp16'"),
        ("--validate-every", "0", "--validate-every must be positive"),
        ("--device", "tpu", "unknown device 'tpu'"),
        ("--backbone-size", "0", "--backbone-size must be positive"),
    ],
)
def test_bad_options(tmp_path, option, value, message):
    data = make_scene_folder(tmp_path / "scenes", per_class=3)
    result = snca(data, *FAST, option, value, "--output", tmp_path / "run")
    assert_one_line_error(result, message)


def test_distillation_needs_the_snca_memory(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=3)
    result = snca(data, *FAST, "--loss", "ce", "--distill", "1", "--output", tmp_path / "run")
    assert_one_line_error(result, "--distill compares neighbourhoods over the memory")


def test_a_run_that_cannot_start_leaves_no_files(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=3)
    (tmp_path / "weights.pt").write_text("not a state dict")
    args = [data, *FAST, "--weights", tmp_path / "weights.pt", "--output", tmp_path / "run"]
    assert_one_line_error(snca(*args), "cannot read weights file")
    assert list((tmp_path / "run").iterdir()) == []  # so the same command can run again
    assert_one_line_error(snca(*args), "cannot read weights file")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=3)
    result = snca(data, *FAST, "--device", "cuda", "--output", tmp_path / "run")
    assert_one_line_error(result, "--device cuda", "no CUDA GPU")


def test_a_run_trains_on_another_runs_split_without_its_test_images(trained, tmp_path):
    data, run, _ = trained
    given = json.loads((run / "split.json").read_text())
    partial = tmp_path / "scenes"
    for item in given["train"] + given["val"]:
        (partial / item).parent.mkdir(parents=True, exist_ok=True)
        (partial / item).write_bytes((data / item).read_bytes())
    result = snca(
        partial, *FAST, "--epochs", "1", "--split", run / "split.json", "--output", tmp_path / "r"
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "split.json").read_text()) == given
    checkpoint = torch.load(tmp_path / "r" / "last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["split"]["test"] == given["test"]
    other = make_scene_folder(tmp_path / "two", per_class=8, classes=2)
    result = snca(other, *FAST, "--split", run / "split.json", "--output", tmp_path / "r2")
    assert_one_line_error(result, "the classes of", "differ from those of split file")


def test_a_new_run_starts_from_another_runs_network(trained, tmp_path):
    data, run, _ = trained
    out = tmp_path / "resampled"
    args = [data, *FAST, "--epochs", "1", "--init", run, "--backbone-size", "48"]
    result = snca(*args, "--output", out)
    assert result.exit_code == 0, result.output
    checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["model_config"]["backbone_size"] == 48
    assert checkpoint["model_config"]["image_size"] == 32
    assert checkpoint["train_config"]["init"] == str(run.resolve())
    result = snca("--resume", out, "--backbone-size", "64")
    assert_one_line_error(result, "another architecture", "backbone_size 48 vs 64")


def test_bad_init_checkpoints_are_one_line_errors(trained, tmp_path):
    data, run, _ = trained
    result = snca(data, *FAST, "--init", tmp_path / "missing.pt", "--output", tmp_path / "a")
    assert_one_line_error(result, "missing.pt does not exist")
    assert not (tmp_path / "a").exists()
    result = snca(data, *FAST, "--init", run, "--embedding-dim", "8", "-o", tmp_path / "b")
    assert_one_line_error(result, "holds another network (embedding_dim 16 vs 8)")
    result = snca(data, *FAST, "--init", run, "--weights", run / "last.pt", "-o", tmp_path / "c")
    assert_one_line_error(result, "--init and --weights")


def test_a_run_on_other_classes_starts_from_a_network_with_a_new_head(trained, tmp_path):
    _, run, _ = trained
    other = make_scene_folder(tmp_path / "two", per_class=8, classes=2)
    out = tmp_path / "other"
    result = snca(other, *FAST, "--epochs", "1", "--lr", "1e-9", "--init", run, "--output", out)
    assert result.exit_code == 0, result.output
    started = torch.load(run / "last.pt", map_location="cpu", weights_only=True)["model_state"]
    checkpoint = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["class_names"] == ["fields", "roofs"]
    assert checkpoint["model_state"]["classifier.weight"].shape[0] == 2
    for key in ("backbone.resnet.conv1.weight", "embedding.weight"):  # lr 1e-9: as it started
        difference = (checkpoint["model_state"][key] - started[key]).abs().max()
        assert difference < 1e-4, key


def test_help_states_the_real_defaults():
    import typer.main

    from snca_train.config import TrainConfig
    from snca_train.losses.objective import LossConfig

    command = typer.main.get_command(app).commands["train"]
    helps = {param.name: param.help for param in command.params}
    config, loss = TrainConfig(data_dir="."), LossConfig()
    for name in (
        "image_size",
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "embedding_dim",
        "encoder_momentum",
        "seed",
        "split_seed",
        "workers",
        "threads",
    ):
        assert helps[name].endswith(f"Default: {getattr(config, name):g}."), name
    for name in ("lambda_snca", "sigma", "triplet_margin", "pos_margin", "neg_margin"):
        assert helps[name].endswith(f"Default: {getattr(loss, name):g}."), name
    values = ",".join(f"{v:g}" for v in config.memory_momentum.values)
    assert helps["memory_momentum"].endswith(f"Default: {values}.")
    assert helps["backbone"].startswith(f"{config.backbone} (default")
    assert helps["loss"].startswith(f"{loss.loss} (default)")
    assert helps["device"].endswith(f"Default: {config.device}.")
    from snca_train.onnx_init import FINE_TUNE_LR

    assert helps["init"].endswith(f"--lr defaults to {FINE_TUNE_LR:.4f}.")


def test_without_torch_the_command_names_the_extra(tmp_path):
    script = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from typer.testing import CliRunner\n"
        "from snca_cli.cli import app\n"
        f"result = CliRunner().invoke(app, ['train', {str(tmp_path)!r}])\n"
        "print(result.exit_code)\n"
        "print(result.output.strip())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    code, *lines = done.stdout.strip().splitlines()
    assert code == "2"
    assert lines == ['error: this command needs the training extra: pip install "snca[train]"']
