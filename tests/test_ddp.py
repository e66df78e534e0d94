"""`colorize train` under torchrun: two CPU processes with the gloo backend train as one process would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from colorize_cli.models.checkpoint import load_checkpoint
from colorize_cli.train.loop import train
from tests.test_train import quiet, tiny_config, write_photos

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"), train=16, val=1)


def test_two_gloo_processes_match_one_process_with_the_double_batch(photos, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "colorize_cli", "train", "--model", "cnn", "--data", str(photos), "--out", str(out),
        "--steps", "4", "--batch-size", "2", "--crop-size", "32", "--lr", "3e-3", "--no-amp", "--workers", "0",
        "--log-every", "1", "--save-every", "2", "--val-every", "4", "--device", "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]

    # Rank 0 alone logs and writes: every step once, one validation, one set of files.
    assert process.stderr.count("step 4/4") == 1
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics if r["split"] == "train"] == [1, 2, 3, 4]
    assert [r["step"] for r in metrics if r["split"] == "val"] == [4]
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]

    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == 4
    fingerprints = state["fingerprints"]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]  # both replicas hold the same weights
    assert len(state["rng"]) == 2  # each rank's RNG, so that a resumed DDP run continues exactly
    assert state["sessions"][-1]["hardware"].startswith("2 x CPU")

    # DDP averages the two ranks' gradients of batch 2: the gradient of the same 4 images in one batch.
    train(tiny_config("cnn", photos, steps=4, batch_size=4, lr=3e-3, val_every=4, save_every=2), tmp_path / "single",
          session=quiet(), log=lambda line: None)
    single = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    for name, value in single["model"].items():
        torch.testing.assert_close(state["model"][name], value, atol=1e-5, rtol=1e-4, msg=name)


def test_gan_replicas_stay_equal_when_the_encoder_starts_learning_after_the_warm_up(photos, tmp_path):
    # The encoder needs no gradients in the warm-up; the network is wrapped again when it starts learning,
    # so that DDP averages its gradients too. A divergence would fail the fingerprint check at each save.
    out = tmp_path / "gan"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "colorize_cli", "train", "--model", "gan", "--data", str(photos), "--out", str(out),
        "--steps", "4", "--warmup-steps", "2", "--batch-size", "2", "--crop-size", "32", "--lr", "1e-3",
        "--no-amp", "--workers", "0", "--save-every", "2", "--val-every", "100", "--device", "cpu",
        "--keep-every", "2", "--config", "decoder_channels=[32,16,16,8]", "--config", "base_channels=8",
        "--config", "max_channels=32", "--config", "class_head=1",  # the class head's wrapper under DDP too
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert process.returncode == 0, process.stderr[-3000:]

    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["fingerprints"][0] == state["fingerprints"][1]
    assert any(key.startswith("unet.class_head.") for key in state["model"])
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("classes" in r for r in logged if r["split"] == "train")
    after_warmup = _encoder_tensors(torch.load(out / "last.pt", weights_only=True)["model"])
    at_warmup_end, _ = load_checkpoint(out / "history" / "step_0000002.safetensors")
    before = _encoder_tensors(at_warmup_end.state_dict())
    frozen, tuned = "unet.encoder.blocks.0.", "unet.encoder.blocks.15."
    assert all(torch.equal(before[k], after_warmup[k]) for k in before if k.startswith(frozen))
    assert any(not torch.equal(before[k], after_warmup[k]) for k in before if k.startswith(tuned))


def _encoder_tensors(state):
    return {k: v for k, v in state.items() if k.startswith("unet.encoder.") and v.is_floating_point()
            and "running" not in k}
