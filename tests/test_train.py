"""`colorize train`: every recipe learns, runs resume exactly, stop cleanly, export, and bad input gives one line.

Runs are tiny (48 px photos, 32 px crops, a handful of steps, fp32 unless amp is the point) so that the
file takes seconds on two cores.
"""

import contextlib
import errno
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open

from colorize_cli.cli import cli
from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.commands.train import Duration
from colorize_cli.models import MODEL_NAMES, build_model
from colorize_cli.models.checkpoint import file_sha256, load_checkpoint, read_header
from colorize_cli.prep.splits import content_hash, in_share, split_for
from colorize_cli.train import run_folder as run_folder_module
from colorize_cli.train.data_order import StepBatches, balance_weights
from colorize_cli.train.loop import RunConfig, Session, TrainingError, train
from colorize_cli.train.recipes import RecipeOptions, recipe_class

REPO = Path(__file__).resolve().parent.parent
# Small widths keep every model at a few thousand to a few hundred thousand parameters.
TINY = {
    "cnn": {},
    "regression": {"width": 8},
    "classification": {"width": 8},
    "autoencoder": {"width": 4, "global_dim": 16},
    "gan": {"base_channels": 8, "max_channels": 32, "decoder_channels": [32, 16, 16, 8]},
}


def write_photos(folder, train, val, size=48, seed=0):
    """PNG photos whose colour follows their brightness (dark blue to light orange), so that L predicts ab;
    `train` and `val` of them fall in each split of the content-hash rule."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    want, have = {"train": train, "val": val}, {"train": 0, "val": 0}
    yy, xx = np.mgrid[0:size, 0:size] / size
    dark, light = np.array([0.1, 0.15, 0.5]), np.array([1.0, 0.7, 0.3])
    while have != want:
        fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
        t = 0.5 + 0.5 * np.sin(fx * 3 * xx + phase) * np.cos(fy * 3 * yy)
        pixels = (dark + t[..., None] * (light - dark)) * 255
        buffer = io.BytesIO()
        Image.fromarray(pixels.round().astype(np.uint8)).save(buffer, format="PNG")
        data = buffer.getvalue()
        split = split_for(content_hash(data))
        if have[split] < want[split]:
            (folder / f"{split}_{have[split]:03d}.png").write_bytes(data)
            have[split] += 1
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"), train=16, val=3)


@pytest.fixture(scope="module")
def train_only(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("train_only"), train=16, val=0, seed=1)


def tiny_config(model, data, **overrides):
    settings = {"model": model, "data": str(data), "model_config": TINY[model], "steps": 6, "batch_size": 4,
                "crop_size": 32, "warmup_steps": 2, "amp": False, "val_every": 1000, "save_every": 1000}
    return RunConfig(**{**settings, **overrides})


def quiet(**overrides):
    return Session(**{"device": "cpu", "workers": 0, "log_every": 1, **overrides})


def records(run, split):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


@pytest.fixture(scope="module")
def validated_run(photos, tmp_path_factory):
    """A cnn run of 6 steps validated at steps 3 and 6."""
    out = tmp_path_factory.mktemp("runs") / "cnn"
    train(tiny_config("cnn", photos, val_every=3, save_every=3), out, session=quiet(), log=lambda line: None)
    return out


# --- every recipe -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_lowers_its_loss_and_leaves_weights_the_colorizer_runs(model, train_only, tmp_path):
    out = tmp_path / model
    # gan: 10 warm-up steps, then the adversarial phase and the pretrained encoder's fine-tuning; its L1
    # term is what must fall. A high learning rate makes 20 steps enough (gan's critic and encoder want a
    # third of it).
    config = tiny_config(model, train_only, steps=20, warmup_steps=10, lr=1e-3 if model == "gan" else 3e-3)
    result = train(config, out, session=quiet(log_every=5), log=lambda line: None)

    assert (result.step, result.stopped_by) == (20, "steps")
    losses = records(out, "train")
    assert [r["step"] for r in losses] == [5, 10, 15, 20]
    assert all(np.isfinite(v) for r in losses for k, v in r.items() if k != "split")
    key = "l1" if model == "gan" else "loss"
    assert losses[-1][key] < 0.9 * losses[0][key]
    if model == "gan":
        assert {"adversarial", "critic"} <= losses[-1].keys()
    colorizer = Colorizer.from_checkpoint(out / "last.safetensors")
    rgb = colorizer.colorize_l(np.linspace(0, 100, 40 * 56, dtype=np.float32).reshape(40, 56))
    assert rgb.shape == (40, 56, 3) and np.isfinite(rgb).all()


def test_amp_trains_in_bf16_with_finite_losses(train_only, tmp_path):
    result = train(tiny_config("gan", train_only, steps=4, amp=True), tmp_path / "gan", session=quiet(),
                   log=lambda line: None)
    assert result.step == 4
    assert all(np.isfinite(r["loss"]) for r in records(tmp_path / "gan", "train"))


@pytest.mark.parametrize("native", [False, True])
def test_amp_by_default_is_on_only_where_the_device_runs_bf16_natively(train_only, tmp_path, monkeypatch, native):
    # Emulated bf16 trains many times slower than fp32, so the default follows the hardware.
    monkeypatch.setattr("colorize_cli.train.loop.native_bf16", lambda device: native)
    lines = []
    train(tiny_config("cnn", train_only, steps=2, amp=None), tmp_path / "cnn", session=quiet(), log=lines.append)
    assert json.loads((tmp_path / "cnn" / "run.json").read_text())["amp"] is None  # a resume decides anew
    session = torch.load(tmp_path / "cnn" / "last.pt", weights_only=True)["sessions"][-1]
    assert session["amp"] is native
    assert any((", bf16," if native else ", fp32,") in line for line in lines if line.startswith("training cnn"))
    reproduce = _exported_card(tmp_path / "cnn", tmp_path / "w").split("## Reproduce")[1]
    assert "--amp" not in reproduce and "--no-amp" not in reproduce


@pytest.mark.parametrize("amp, flag", [(True, "--amp"), (False, "--no-amp")])
def test_a_forced_amp_setting_is_kept_and_named_in_the_card(train_only, tmp_path, monkeypatch, amp, flag):
    monkeypatch.setattr("colorize_cli.train.loop.native_bf16", lambda device: not amp)
    train(tiny_config("cnn", train_only, steps=2, amp=amp), tmp_path / "cnn", session=quiet(), log=lambda line: None)
    assert torch.load(tmp_path / "cnn" / "last.pt", weights_only=True)["sessions"][-1]["amp"] is amp
    assert f"{flag}\n" in _exported_card(tmp_path / "cnn", tmp_path / "w").split("## Reproduce")[1]


def _exported_card(run, out):
    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(out / "cnn.safetensors")])
    assert result.exit_code == 0, result.output
    return (out / "cnn.md").read_text()


def test_autoencoder_learns_scene_labels_beside_colour_and_ignores_unlabelled_images():
    torch.manual_seed(0)
    model = build_model("autoencoder", {"width": 4, "global_dim": 8, "num_scenes": 3, "global_branch": "joint"})
    recipe = recipe_class("autoencoder")(model, RecipeOptions(lr=1e-2, autocast=contextlib.nullcontext))
    # Each scene has its own brightness, so that the global branch can tell them apart.
    brightness = torch.tensor([-0.8, 0.8, 0.0, 0.3])[:, None, None, None]
    batch = {"l": brightness + 0.1 * torch.rand(4, 1, 32, 32), "ab": torch.rand(4, 2, 32, 32) * 0.2,
             "label": torch.tensor([0, 2, -1, 1])}
    head_before = model.scene_head.weight.clone()
    first = {name: float(value) for name, value in recipe.step(batch, 0).items()}
    assert first["loss"] == pytest.approx(first["mse"] + first["scene"] / 300, rel=1e-5)
    assert not torch.equal(model.scene_head.weight, head_before)
    losses = [float(recipe.step(batch, step)["scene"]) for step in range(1, 30)]
    assert losses[-1] < 0.75 * first["scene"]
    unlabelled = recipe.step({**batch, "label": torch.full((4,), -1)}, 30)
    assert unlabelled["scene"] == 0 and torch.isfinite(unlabelled["loss"])


def test_data_order_shards_each_step_between_processes_and_resumes_at_any_step():
    single = StepBatches(19, 4, seed=3)
    ranks = [StepBatches(19, 2, seed=3, rank=rank, world_size=2) for rank in range(2)]
    steps = [list(islice(iter(sampler), 9)) for sampler in (single, *ranks)]
    for whole, first, second in zip(*steps):
        assert sorted(whole) == sorted(first + second)  # the same images and augmentation seeds
    assert list(islice(iter(StepBatches(19, 4, seed=3, start_step=5)), 4)) == steps[0][5:9]
    epochs = [sorted(i for batch in steps[0][e * 4:(e + 1) * 4] for i, _ in batch) for e in range(2)]
    assert len(set(epochs[0])) == 16 and epochs[0] != epochs[1]  # 4 full batches per epoch, reshuffled


def _folder_shares(sampler, folders, steps):
    drawn = [folders[index] for batch in islice(iter(sampler), steps) for index, _ in batch]
    return {folder: drawn.count(folder) / len(drawn) for folder in sorted(set(folders))}


@pytest.mark.parametrize("power, expected_b", [(0.0, 0.1), (0.5, 10**0.5 / (90**0.5 + 10**0.5)), (1.0, 0.5)])
def test_balanced_data_order_draws_each_folder_in_proportion_to_its_size_to_one_minus_power(power, expected_b):
    folders = ["a"] * 90 + ["b"] * 10
    weights = balance_weights(folders, power)
    assert weights[0] / weights[-1] == pytest.approx((10 / 90) ** power)
    sampler = StepBatches(100, 10, seed=1, weights=weights)
    shares = _folder_shares(sampler, folders, steps=400)  # 4,000 draws: a binomial sd of 0.008 at most
    assert shares["b"] == pytest.approx(expected_b, abs=0.03)
    # The same order after a resume at any step, and split between processes as the unweighted one is.
    straight = list(islice(iter(sampler), 12))
    assert list(islice(iter(StepBatches(100, 10, seed=1, weights=weights, start_step=7)), 5)) == straight[7:]
    ranks = [StepBatches(100, 5, seed=1, weights=weights, rank=rank, world_size=2) for rank in range(2)]
    for whole, *parts in zip(straight, *(islice(iter(rank), 12) for rank in ranks)):
        assert sorted(whole) == sorted(parts[0] + parts[1])


def test_balance_power_outside_zero_to_one_and_mismatched_weights_are_refused():
    with pytest.raises(ValueError, match="balance power must be in"):
        balance_weights(["a"], 1.5)
    with pytest.raises(ValueError, match="3 sampling weights for 4 images"):
        StepBatches(4, 2, seed=0, weights=torch.ones(3))
    with pytest.raises(TrainingError, match="balance_folders must be in"):
        tiny_config("cnn", "x", balance_folders=-0.1)


def test_a_balanced_run_draws_its_small_folder_more_and_keeps_the_setting_on_resume(tmp_path):
    data = tmp_path / "data"
    write_photos(data / "big", train=12, val=2, seed=2)
    write_photos(data / "small", train=4, val=1, seed=3)
    config = tiny_config("cnn", data, steps=2, balance_folders=1.0)
    train(config, tmp_path / "run", session=quiet(), log=lambda line: None)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["balance_folders"] == 1.0
    with pytest.raises(TrainingError, match="balance_folders"):
        train(replace(config, steps=4, balance_folders=0.5), tmp_path / "run", session=quiet(), resume=True,
              log=lambda line: None)
    weights = tmp_path / "w" / "cnn.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(tmp_path / "run"), "--out", str(weights),
                                      "--checkpoint", "last"])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "w" / "cnn.md").read_text()
    assert "top folders drawn in proportion to their photos ** 0" in card and "--balance-folders 1" in card


# --- the run folder ---------------------------------------------------------------------------------------


def test_run_folder_holds_settings_metrics_figures_samples_and_the_best_weights(validated_run):
    settings = json.loads((validated_run / "run.json").read_text())
    assert settings["model"] == "cnn" and settings["lr"] == 1e-3 and settings["steps"] == 6

    assert [r["step"] for r in records(validated_run, "train")] == [1, 2, 3, 4, 5, 6]
    validations = records(validated_run, "val")
    assert [r["step"] for r in validations] == [3, 6]
    gray = records(validated_run, "gray")[0]
    assert gray["chroma_ratio"] == 0 and gray["colourfulness"] < 1 < gray["colourfulness_truth"]
    for record in validations:
        assert 5 < record["psnr"] < 60 and 0 < record["auc"] <= 100 and record["colourfulness"] >= 0

    for name in ("loss.png", "validation.png", "samples/step_0000003.png", "samples/step_0000006.png"):
        with Image.open(validated_run / name) as image:
            assert image.format == "PNG" and image.width > 100

    header = read_header(validated_run / "best.safetensors")
    best_step = max(validations, key=lambda r: r["auc"])["step"]
    assert header["training"]["trained_steps"] == best_step
    assert header["metrics"]["auc"] == pytest.approx(max(r["auc"] for r in validations), abs=1e-5)
    model, _ = load_checkpoint(validated_run / "last.safetensors")
    assert model.name == "cnn"


# --- resume -----------------------------------------------------------------------------------------------


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flatten(value, f"{prefix}/{key}")
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _flatten(value, f"{prefix}/{index}")
    else:
        yield prefix, tree


def _training_state(run):
    state = torch.load(run / "last.pt", weights_only=True)
    return state["step"], dict(_flatten({"model": state["model"], "recipe": state["recipe"], "rng": state["rng"]}))


# gan: dropout, BatchNorm, two optimizers, and the resume falls after the warm-up; cnn with loader workers.
@pytest.mark.parametrize(("model", "workers"), [("gan", 0), ("cnn", 2)])
def test_a_resumed_run_is_bitwise_equal_to_a_straight_one_on_cpu(model, workers, photos, tmp_path):
    session = quiet(workers=workers)
    train(tiny_config(model, photos, steps=6, val_every=4), tmp_path / "straight", session=session,
          log=lambda line: None)
    train(tiny_config(model, photos, steps=3, val_every=4), tmp_path / "resumed", session=session,
          log=lambda line: None)
    train(tiny_config(model, photos, steps=6, val_every=4), tmp_path / "resumed", session=session, resume=True,
          log=lambda line: None)

    step_a, straight = _training_state(tmp_path / "straight")
    step_b, resumed = _training_state(tmp_path / "resumed")
    assert step_a == step_b == 6
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        same = torch.equal(value, resumed[key]) if isinstance(value, torch.Tensor) else value == resumed[key]
        assert same, key
    # The resumed run's log continues its own: each step once, sessions recorded.
    assert [r["step"] for r in records(tmp_path / "resumed", "train")] == [1, 2, 3, 4, 5, 6]
    sessions = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["sessions"]
    assert [(s["first_step"], s["last_step"]) for s in sessions] == [(0, 3), (3, 6)]


def test_resume_from_the_cli_needs_only_the_run_folder(validated_run, tmp_path):
    run = tmp_path / "cnn"
    shutil.copytree(validated_run, run)
    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--steps", "8", "--workers", "0",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 8
    assert json.loads((run / "run.json").read_text())["steps"] == 8


# --- stopping ---------------------------------------------------------------------------------------------


def test_sigterm_finishes_the_step_saves_and_exits_143(photos, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "colorize_cli", "train", "--model", "cnn", "--data", str(photos),
               "--out", str(out), "--steps", "100000", "--batch-size", "4", "--crop-size", "32", "--no-amp",
               "--workers", "1", "--log-every", "1", "--save-every", "100000", "--device", "cpu"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "metrics.jsonl").exists() or len(records(out, "train")) < 3:
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=60)[1]

    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "(SIGTERM)" in stderr and "Traceback" not in stderr
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == records(out, "train")[-1]["step"] >= 3
    assert read_header(out / "last.safetensors")["training"]["trained_steps"] == state["step"]


def test_time_limit_stops_and_saves(photos, tmp_path):
    result = train(tiny_config("cnn", photos, steps=10**6), tmp_path / "run", session=quiet(time_limit=1.5),
                   log=lambda line: None)
    assert result.stopped_by == "time limit" and 0 < result.step < 10**6
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == result.step


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400),
                                               ("45", 45), ("0.5h", 1800)])
def test_durations(text, seconds):
    assert Duration().convert(text, None, None) == seconds


# --- export -----------------------------------------------------------------------------------------------


def test_export_writes_fp16_weights_and_a_card_from_the_run(validated_run, tmp_path):
    result = CliRunner().invoke(cli, ["train", "export", str(validated_run), "--out", str(tmp_path / "w" / "cnn.safetensors")])
    assert result.exit_code == 0, result.output

    weights = tmp_path / "w" / "cnn.safetensors"
    _, header = load_checkpoint(weights)
    best = read_header(validated_run / "best.safetensors")
    assert header["training"]["steps"] == best["training"]["trained_steps"]
    assert header["training"]["data"]["images"] == {"train": 16, "val": 3}
    assert header["metrics"]["auc"] == pytest.approx(best["metrics"]["auc"], abs=1e-5)
    with safe_open(str(weights), "pt") as handle:
        dtypes = {handle.get_tensor(key).dtype for key in handle.keys()}  # noqa: SIM118 (not a dict)
    assert dtypes == {torch.float16}
    assert (tmp_path / "w" / "SHA256SUMS").read_text().split() == [file_sha256(weights), "cnn.safetensors"]

    card = (tmp_path / "w" / "cnn.md").read_text()
    for section in ("## Data", "## Recipe", "## Training", "## Validation", "## Reproduce"):
        assert section in card
    assert "32,202 parameters" in card
    assert f"| AuC of the ab error curve (%) | {header['metrics']['auc']:.3f} |" in card
    assert "colorize train --model cnn" in card and torch.__version__ in card
    # The data is named by what it is, not by where it lay on the trainer's machine.
    assert str(tmp_path.parent.parent) not in card and "/tmp" not in card
    assert "/tmp" not in json.dumps(header["training"]["data"])
    assert f"- source: `{Path(header['training']['data']['path']).name}`" in card


def test_export_can_change_a_decoding_setting_but_not_the_network(photos, tmp_path):
    run = tmp_path / "classification"
    train(tiny_config("classification", photos, steps=2, save_every=2), run, session=quiet(), log=lambda line: None)
    weights = tmp_path / "w" / "classification.safetensors"

    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights), "--config", "temperature=0.7"])
    assert result.exit_code == 0, result.output
    model, header = load_checkpoint(weights)
    assert model.config.temperature == 0.7 and header["config"]["temperature"] == 0.7
    assert "temperature=0.7 set at export" in (tmp_path / "w" / "classification.md").read_text()

    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights), "--config", "width=12"])
    assert "changes the network's shape" in _one_line_error(result)
    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights), "--config", "depth=3"])
    assert "Unknown config key" in _one_line_error(result)


def test_a_train_share_thins_the_training_photos_only_and_is_recorded_and_kept_on_resume(tmp_path):
    data = write_photos(tmp_path / "data", train=24, val=3, seed=4)
    lines = []
    config = tiny_config("cnn", data, steps=2, save_every=2, train_share=0.5)
    train(config, tmp_path / "run", session=quiet(), log=lines.append)
    expected = sum(in_share(content_hash(p.read_bytes()), 0.5) for p in data.rglob("*.png")
                   if split_for(content_hash(p.read_bytes())) == "train")
    assert 0 < expected < 24
    assert any(f"on {expected} images (3 for validation)" in line for line in lines), lines
    assert json.loads((tmp_path / "run" / "run.json").read_text())["train_share"] == 0.5
    result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "run"), "--steps", "3", "--train-share", "1"])
    assert result.exit_code != 0 and "train_share" in result.output  # it defines the run
    weights = tmp_path / "w" / "cnn.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(tmp_path / "run"), "--out", str(weights)])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "w" / "cnn.md").read_text()
    assert "on 0.5 of the training photos (chosen by content hash)" in card
    assert "--train-share 0.5" in card.split("## Reproduce")[1]
    with pytest.raises(TrainingError, match="train_share must be in"):
        tiny_config("cnn", data, train_share=0.0)
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "x"), "--train-share", "0"])
    assert result.exit_code != 0 and "--train-share" in result.output


@pytest.mark.parametrize("setting, card_text", [
    ("old_film", "50% of them given the lightness an old red-blind emulsion records"),
    ("aged_print", "50% of them given the lightness of an aged print (blurred, faded, grained)"),
])
def test_an_input_lightness_share_is_recorded_in_the_run_and_its_card_and_kept_on_resume(
        photos, tmp_path, setting, card_text):
    flag = "--" + setting.replace("_", "-")
    run = tmp_path / "cnn"
    train(tiny_config("cnn", photos, steps=2, save_every=2, **{setting: 0.5}), run, session=quiet(),
          log=lambda line: None)
    assert json.loads((run / "run.json").read_text())[setting] == 0.5
    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--steps", "3", flag, "0.25"])
    assert result.exit_code != 0 and setting in result.output  # it defines the run
    weights = tmp_path / "w" / "cnn.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights)])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "w" / "cnn.md").read_text()
    assert card_text in card
    assert f"{flag} 0.5" in card.split("## Reproduce")[1]
    with pytest.raises(TrainingError, match=f"{setting} must be a share"):
        tiny_config("cnn", photos, **{setting: 1.5})
    result = CliRunner().invoke(cli, ["train", "--data", str(photos), "--out", str(tmp_path / "x"), flag, "2"])
    assert result.exit_code != 0 and flag in result.output


def test_keep_every_keeps_a_history_that_export_chooses_a_step_from(photos, tmp_path):
    run = tmp_path / "cnn"
    # save_every does not divide keep_every's steps: kept steps are saved anyway.
    train(tiny_config("cnn", photos, steps=6, keep_every=2, save_every=5, val_every=2), run, session=quiet(),
          log=lambda line: None)
    assert sorted(p.name for p in (run / "history").iterdir()) == [
        "step_0000002.safetensors", "step_0000004.safetensors", "step_0000006.safetensors"]
    kept, _ = load_checkpoint(run / "history" / "step_0000004.safetensors")

    weights = tmp_path / "w" / "cnn.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights), "--checkpoint", "4"])
    assert result.exit_code == 0, result.output
    model, header = load_checkpoint(weights)
    assert header["training"]["steps"] == 4
    for name, tensor in kept.state_dict().items():
        assert torch.allclose(model.state_dict()[name].float(), tensor.half().float()), name
    card = (tmp_path / "w" / "cnn.md").read_text()
    assert "step 4 (kept in the run's history, chosen after training)" in card
    assert f"| AuC of the ab error curve (%) | {header['metrics']['auc']:.3f} |" in card

    line = _one_line_error(CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights),
                                                   "--checkpoint", "5"]))
    assert "keeps no weights of step 5; kept steps: 2, 4, 6" in line
    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights), "--checkpoint", "newest"])
    assert result.exit_code == 2 and "'newest' is not best, last or a step number" in result.output


@pytest.mark.parametrize("loss", ["smooth_l1", "l2"])
def test_gan_warmup_loss_is_a_config_value(loss, train_only, tmp_path):
    config = tiny_config("gan", train_only, steps=10, warmup_steps=10, lr=1e-3,
                         model_config={**TINY["gan"], "warmup_loss": loss})
    train(config, tmp_path / "gan", session=quiet(log_every=5), log=lambda line: None)
    first, last = records(tmp_path / "gan", "train")
    assert loss in last and "l1" not in last
    assert last[loss] < 0.9 * first[loss]
    with pytest.raises(ValueError, match="warmup_loss must be one of l1, smooth_l1, l2"):
        build_model("gan", {"warmup_loss": "huber"})


def test_euclidean_ab_loss_is_half_the_mean_ab_distance():
    from colorize_cli.train.recipes import euclidean_ab_loss

    target = torch.zeros(2, 2, 3, 3)
    output = target.clone()
    output[:, 0] = 0.3
    output[:, 1] = 0.4  # every pixel 0.5 away
    assert float(euclidean_ab_loss(output, target)) == pytest.approx(0.25, abs=1e-5)
    one_channel = target.clone()
    one_channel[:, 0] = 0.2  # an error on one channel weighs as in per-channel L1
    assert float(euclidean_ab_loss(one_channel, target)) == pytest.approx(
        float(torch.nn.functional.l1_loss(one_channel, target)), abs=1e-5)
    exact = target.clone().requires_grad_()
    euclidean_ab_loss(exact, target).backward()
    assert torch.isfinite(exact.grad).all()  # differentiable at zero error


def test_gan_pixel_loss_beside_the_critic_is_a_config_value(train_only, tmp_path):
    config = tiny_config("gan", train_only, steps=6, warmup_steps=2, lr=1e-3,
                         model_config={**TINY["gan"], "pixel_loss": "euclidean"})
    train(config, tmp_path / "gan", session=quiet(), log=lambda line: None)
    adversarial = [r for r in records(tmp_path / "gan", "train") if r["step"] > 2]
    assert adversarial and all("euclidean" in r and "l1" not in r and "critic" in r for r in adversarial)
    with pytest.raises(ValueError, match="pixel_loss must be one of l1, euclidean"):
        build_model("gan", {"pixel_loss": "l2"})
    # The model config's names are the recipe's losses (the model package cannot import the recipes).
    from colorize_cli.models import gan
    from colorize_cli.train import recipes
    assert set(gan.GAN_PIXEL_LOSSES) == set(recipes.GAN_PIXEL_LOSSES)
    assert set(gan.WARMUP_LOSSES) == set(recipes.WARMUP_LOSSES)


def test_learning_rates_decay_linearly_from_decay_from_also_when_a_resume_adds_it(train_only, tmp_path):
    run = tmp_path / "gan"
    train(tiny_config("gan", train_only, steps=4, warmup_steps=2, lr=1e-3, save_every=4), run, session=quiet(),
          log=lambda line: None)
    # The resumed run goes on to step 12, its rates falling from step 4 to a tenth at step 12.
    resumed = tiny_config("gan", train_only, steps=12, warmup_steps=2, lr=1e-3, save_every=4, decay_from=4)
    train(resumed, run, session=quiet(), resume=True, log=lambda line: None)
    logged = {r["step"]: r["lr"] for r in records(run, "train")}
    # lr logged after step s was scheduled at step s - 1
    assert logged[4] == pytest.approx(1e-3) and logged[5] == pytest.approx(1e-3)
    assert logged[9] == pytest.approx(1e-3 * (1 - 0.9 * 4 / 7))
    assert logged[12] == pytest.approx(1e-3 * 0.1)  # the last step trains at decay_to itself
    state = torch.load(run / "last.pt", weights_only=True)
    critic = state["recipe"]["critic_optimizer"]["param_groups"][0]["lr"]
    encoder = state["recipe"]["optimizer"]["param_groups"][1]["lr"]
    assert critic == pytest.approx(logged[12]) and encoder == pytest.approx(0.1 * logged[12])  # encoder_lr_scale
    weights = tmp_path / "w" / "gan.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights), "--checkpoint", "last"])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "w" / "gan.md").read_text()
    assert "falling linearly from step 4 to 0.1x at step 12" in card and "--decay-from 4 --decay-to 0.1" in card


def _learnt(state_dict):
    """The learnt tensors of a state dict (BatchNorm's running statistics move in any training step)."""
    return {name: tensor for name, tensor in state_dict.items() if "running_" not in name and "num_batches" not in name}


def test_init_from_starts_a_new_run_from_another_runs_weights_and_critic(train_only, photos, tmp_path):
    source = tmp_path / "gan"
    train(tiny_config("gan", train_only, steps=4, warmup_steps=2, lr=1e-3), source, session=quiet(),
          log=lambda line: None)
    # A rate of 1e-12 leaves every weight where it started: the new run's weights are the source's.
    tuned = tmp_path / "gan-wide"
    train(tiny_config("gan", photos, steps=1, warmup_steps=0, lr=1e-12, zoom_out=1.5,
                      init_from=str(source), model_config={}), tuned, session=quiet(), log=lambda line: None)
    before = torch.load(source / "last.pt", weights_only=True)
    after = torch.load(tuned / "last.pt", weights_only=True)
    assert after["step"] == 1  # a new run: its own steps and optimizer, not the source's
    for name, tensor in _learnt(before["model"]).items():
        assert torch.allclose(after["model"][name], tensor, atol=1e-6), name
    for name, tensor in _learnt(before["recipe"]["discriminator"]).items():
        assert torch.allclose(after["recipe"]["discriminator"][name], tensor, atol=1e-6), name
    settings = json.loads((tuned / "run.json").read_text())
    assert (settings["init_from"], settings["init_step"], settings["zoom_out"]) == (str(source), 4, 1.5)
    assert settings["model_config"] == json.loads((source / "run.json").read_text())["model_config"]

    weights = tmp_path / "w" / "gan.safetensors"
    result = CliRunner().invoke(cli, ["train", "export", str(tuned), "--out", str(weights), "--checkpoint", "last"])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "w" / "gan.md").read_text()
    assert f"started from the weights of `{source}` at step 4" in card
    assert f"--zoom-out 1.5 --init-from {source}" in card and "squares up to 1.5x that side" in card
    # The card traces the weights back: the source run's sessions and the command that reproduces it.
    lineage = card.split("## Lineage")[1].split("## Reproduce")[0]
    assert f"- `{source}` at step 4:" in lineage and "1 session(s)" in lineage and "CPU" in lineage
    reproduce = card.split("## Reproduce")[1].split("```")[1].strip().splitlines()
    assert len(reproduce) == 2 and "--init-from" not in reproduce[0] and "--warmup-steps 2" in reproduce[0]
    assert f"--init-from {source}" in reproduce[1]

    # A weights file works as well, and the model comes from it when --model is not given.
    result = _cli_train("--init-from", str(weights), "--data", str(photos), "--out", str(tmp_path / "from-file"))
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "from-file" / "run.json").read_text())
    assert (settings["model"], settings["init_step"]) == ("gan", 1)
    lineage = torch.load(tmp_path / "from-file" / "last.pt", weights_only=True)["lineage"]
    assert [(entry["source"], entry["step"]) for entry in lineage] == [(str(source), 4), (str(weights), 1)]
    assert lineage[1]["settings"]["init_from"] == str(source)


def test_lineage_is_traced_through_runs_whose_state_predates_it(train_only, tmp_path):
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    train(tiny_config("gan", train_only, steps=2, warmup_steps=1), first, session=quiet(), log=lambda line: None)
    train(tiny_config("gan", train_only, steps=1, warmup_steps=0, init_from=str(first), model_config={}), second,
          session=quiet(), log=lambda line: None)
    state = torch.load(second / "last.pt", weights_only=True)
    del state["lineage"]  # as a run started before lineages were recorded
    torch.save(state, second / "last.pt")
    train(tiny_config("gan", train_only, steps=1, warmup_steps=0, init_from=str(second), model_config={}), third,
          session=quiet(), log=lambda line: None)
    lineage = torch.load(third / "last.pt", weights_only=True)["lineage"]
    assert [(entry["source"], entry["step"]) for entry in lineage] == [(str(first), 2), (str(second), 1)]


def test_init_from_another_model_or_an_unstarted_run_is_one_line(validated_run, photos, tmp_path):
    line = _one_line_error(_cli_train("--model", "gan", "--init-from", str(validated_run), "--data", str(photos),
                                      "--out", str(tmp_path / "r")))
    assert "holds cnn weights; a gan run cannot start from them" in line
    (tmp_path / "empty-run").mkdir()
    shutil.copy(validated_run / "run.json", tmp_path / "empty-run" / "run.json")
    line = _one_line_error(_cli_train("--init-from", str(tmp_path / "empty-run"), "--data", str(photos),
                                      "--out", str(tmp_path / "r2")))
    assert "has no checkpoint (last.pt) to start from yet" in line
    line = _one_line_error(_cli_train("--resume", str(validated_run), "--init-from", str(validated_run)))
    assert "a resumed run keeps it" in line


# --- bad input --------------------------------------------------------------------------------------------


def _one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output
    return lines[0]


def _cli_train(*args):
    return CliRunner().invoke(cli, ["train", "--batch-size", "4", "--crop-size", "32", "--steps", "2", "--no-amp",
                                    "--workers", "0", "--device", "cpu", *args])


def test_an_empty_data_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    line = _one_line_error(_cli_train("--model", "cnn", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")))
    assert "no images" in line


def test_corrupt_images_are_skipped_and_counted(photos, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "truncated.png").write_bytes((photos / "train_000.png").read_bytes()[:60])
    lines = []
    result = train(tiny_config("cnn", data, steps=2), tmp_path / "run", session=quiet(), log=lines.append)
    assert result.step == 2
    [training] = [line for line in lines if line.startswith("training cnn")]
    assert "2 unreadable file(s) skipped" in training
    named = sorted(line for line in lines if line.startswith("skipped "))
    assert len(named) == 2 and named[0].startswith(f"skipped {data / 'broken.jpg'}: ")
    assert named[1].startswith(f"skipped {data / 'truncated.png'}: ") and all(len(line) > 30 for line in named)


def test_resuming_another_models_run_is_one_line(validated_run):
    line = _one_line_error(_cli_train("--resume", str(validated_run), "--model", "gan"))
    assert "cnn run" in line and "gan" in line


def test_a_damaged_training_state_is_one_line(validated_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(validated_run, run)
    (run / "last.pt").write_bytes((validated_run / "last.pt").read_bytes()[:500])
    line = _one_line_error(_cli_train("--resume", str(run)))
    assert "last.pt: damaged, or not a training state" in line


class _RunsCode:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


@pytest.mark.parametrize("packing", ["raw", "zip"])
def test_a_pickled_training_state_is_refused_in_one_line_naming_why(validated_run, tmp_path, monkeypatch, packing):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(validated_run, run)
    if packing == "raw":
        (run / "last.pt").write_bytes(pickle.dumps({"state": _RunsCode()}, protocol=4))
    else:
        torch.save({"state": _RunsCode()}, run / "last.pt")

    result = _cli_train("--resume", str(run))

    assert result.exit_code != 0 and not (tmp_path / "PWNED").exists()
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert "last.pt: damaged, or not a training state (UnpicklingError: refused to unpickle it: " in line
    assert line.endswith(("Unsupported operand 149)", "GLOBAL builtins.exec was not an allowed global by default)",
                          "GLOBAL exec was not an allowed global by default)"))


def test_an_existing_run_is_not_overwritten_without_resume(validated_run, photos):
    line = _one_line_error(_cli_train("--model", "cnn", "--data", str(photos), "--out", str(validated_run)))
    assert "--resume" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "64"], "do not fill one batch"),
        (["--crop-size", "36"], "multiple of 8"),
        (["--config", "depth=3"], "Unknown config key"),
        (["--model", "regression", "--config", "loss=l3"], "loss must be one of"),
        (["--decay-from", "2"], "decay_from must be a step from 0 to steps - 1"),
    ],
)
def test_settings_that_cannot_train_are_one_line(args, message, photos, tmp_path):
    line = _one_line_error(_cli_train("--model", "cnn", "--data", str(photos), "--out", str(tmp_path / "r"), *args))
    assert message in line


def test_a_run_refused_before_its_first_step_can_be_started_again(photos, tmp_path):
    run = tmp_path / "r"
    refused = _cli_train("--model", "cnn", "--data", str(photos), "--out", str(run), "--batch-size", "64")
    assert "do not fill one batch" in _one_line_error(refused)

    again = _cli_train("--model", "cnn", "--data", str(photos), "--out", str(run))

    assert again.exit_code == 0, again.output
    assert (run / "last.pt").is_file()


def test_a_full_disk_keeps_the_last_good_checkpoint(photos, tmp_path, monkeypatch):
    real_save = torch.save
    saves = []

    def save_then_fill_the_disk(obj, path):
        saves.append(path)
        if len(saves) > 1:
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, path)

    monkeypatch.setattr(run_folder_module.torch, "save", save_then_fill_the_disk)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="No space left on device.*previous checkpoint is kept"):
        train(tiny_config("cnn", photos, steps=6, save_every=2), out, session=quiet(), log=lambda line: None)
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


# --- the command line -------------------------------------------------------------------------------------


def test_train_help_teaches_training_resume_torchrun_and_export():
    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0
    for text in ("--model", "--time-limit", "--resume", "--amp / --no-amp", "--config KEY=VALUE", "torchrun",
                 "export", "--best-metric"):
        assert text in result.output
    export_help = CliRunner().invoke(cli, ["train", "export", "--help"])
    assert export_help.exit_code == 0 and "model card" in export_help.output


def test_validation_chroma_ratio_is_over_summed_chroma_so_a_nearly_gray_crop_cannot_swing_it():
    from colorize_cli.colour.lab import ab_to_unit
    from colorize_cli.train.validation import Validator

    def crop(a):
        ab = torch.zeros(2, 8, 8)
        ab[0] = a
        return {"l": torch.zeros(1, 8, 8), "ab": ab_to_unit(ab)}

    validator = Validator([crop(20.0), crop(0.1)])  # a coloured crop and a nearly gray one
    predicted = torch.zeros(2, 2, 8, 8)
    predicted[:, 0] = 20.0  # both painted a = 20
    ratio = validator._scores(predicted, validator._rgb(predicted))["chroma_ratio"]
    # As `colorize evaluate` counts it: 40 / 20.1, where a mean of per-crop ratios would give (1 + 200) / 2.
    assert ratio == pytest.approx(40 / 20.1, rel=1e-3)
