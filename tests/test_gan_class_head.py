"""The gan's optional 313-bin class head (Zhang et al. 2016) beside its regressed ab: shapes, decoding
blend, rebalancing, training from weights without a head, resume and export."""

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from colorize_cli.cli import cli
from colorize_cli.colour.ab_bins import NUM_BINS, annealed_mean, rebalance_weights, soft_encode
from colorize_cli.colour.lab import ab_to_unit, unit_to_ab
from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.models import build_model
from colorize_cli.models.checkpoint import load_checkpoint
from colorize_cli.train.loop import TrainingError, _load_into, train
from colorize_cli.train.recipes import rebalanced_cross_entropy
from tests.test_train import TINY, quiet, records, tiny_config, write_photos

HEAD = {**TINY["gan"], "class_head": 1.0}


@pytest.fixture(scope="module")
def train_only(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("train_only"), train=16, val=0, seed=1)


def _l_norm(seed=0, size=64):
    return torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_the_head_gives_bin_logits_at_stride_4_and_no_head_means_none():
    model = build_model("gan", HEAD).eval()
    with torch.no_grad():
        ab, logits = model.forward_with_logits(_l_norm())
        assert ab.shape == (2, 2, 64, 64) and logits.shape == (2, NUM_BINS, 16, 16)
        assert torch.equal(model(_l_norm()), ab)  # the critic and the pixel loss see the same ab
        plain = build_model("gan", TINY["gan"]).eval()
        assert plain.forward_with_logits(_l_norm())[1] is None and plain.head_parameters() == []
    assert len(model.head_parameters()) > 0 and model.fresh_parts() == ("unet.class_head.",)


def test_decoding_blends_the_heads_annealed_mean_into_the_regressed_ab():
    torch.manual_seed(0)
    model = build_model("gan", HEAD).eval()
    l_norm = _l_norm(1)
    with torch.no_grad():
        ab, logits = model.forward_with_logits(l_norm)
        decoded = ab_to_unit(F.interpolate(annealed_mean(logits, 0.5), size=(64, 64), mode="bilinear",
                                           align_corners=False))
        blended = build_model("gan", {**HEAD, "class_blend": 0.25, "class_temperature": 0.5}).eval()
        blended.load_state_dict(model.state_dict())
        expected = (0.75 * ab + 0.25 * decoded).clamp(-1, 1)
        assert torch.allclose(blended.predict_ab(l_norm), expected, atol=1e-6)
        # blend 0: the head is not used at all, the prediction is the regression's
        assert torch.equal(model.predict_ab(l_norm), ab)


def test_class_head_settings_are_checked():
    with pytest.raises(ValueError, match="class_blend needs a class head"):
        build_model("gan", {"class_blend": 0.5})
    with pytest.raises(ValueError, match="class_head needs the pretrained encoder"):
        build_model("gan", {"encoder": "scratch", "class_head": 1.0})
    with pytest.raises(ValueError, match=r"class_rebalance must be in \(0, 1\]"):
        build_model("gan", {"class_head": 1.0, "class_rebalance": 0.0})
    with pytest.raises(ValueError, match=r"class_blend must be in \[0, 1\]"):
        build_model("gan", {"class_head": 1.0, "class_blend": 1.5})


def test_rebalanced_cross_entropy_is_zhangs_loss_and_rebalance_1_weighs_every_bin_alike():
    torch.manual_seed(0)
    logits = torch.randn(2, NUM_BINS, 4, 4)
    ab = torch.rand(2, 2, 8, 8) * 0.6 - 0.3  # unit scale, at twice the logits' size
    prior = torch.rand(NUM_BINS) + 0.01
    prior /= prior.sum()
    weights = rebalance_weights(prior, 0.5)
    target = soft_encode(unit_to_ab(F.avg_pool2d(ab, 2)))
    by_hand = (weights[target.argmax(1)] * -(target * logits.log_softmax(1)).sum(1)).mean()
    assert float(rebalanced_cross_entropy(logits, ab, weights)) == pytest.approx(float(by_hand), rel=1e-5)
    assert torch.allclose(rebalance_weights(prior, 1.0), torch.ones(NUM_BINS))


def test_a_run_adds_a_head_to_weights_without_one_and_resumes_and_exports(train_only, tmp_path):
    source = tmp_path / "plain"
    train(tiny_config("gan", train_only, steps=2, warmup_steps=1, lr=1e-3), source, session=quiet(),
          log=lambda line: None)
    run = tmp_path / "head"
    config = tiny_config("gan", train_only, steps=8, warmup_steps=4, lr=1e-3, init_from=str(source),
                         model_config={"class_head": 1.0, "class_rebalance": 0.5}, save_every=4)
    train(config, run, session=quiet(), log=lambda line: None)
    before = torch.load(source / "last.pt", weights_only=True)["model"]
    state = torch.load(run / "last.pt", weights_only=True)
    assert not any(key.startswith("unet.class_head.") for key in before)
    assert any(key.startswith("unet.class_head.") for key in state["model"])
    # Class weights from the data's prior (rebalanced, so not all equal), kept for a resume.
    class_weights = state["recipe"]["class_weights"]
    assert class_weights.shape == (NUM_BINS,) and class_weights.std() > 0
    groups = state["recipe"]["optimizer"]["param_groups"]
    assert groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])  # class_head_lr_scale
    logged = records(run, "train")
    assert all("classes" in r for r in logged)  # in the warm-up and beside the critic
    assert {"adversarial", "critic"} <= logged[-1].keys()
    assert logged[-1]["classes"] < logged[0]["classes"]

    resumed = tiny_config("gan", train_only, steps=10, warmup_steps=4, lr=1e-3, init_from=str(source),
                          model_config={}, save_every=5)
    train(resumed, run, session=quiet(), resume=True, log=lambda line: None)
    after = torch.load(run / "last.pt", weights_only=True)
    assert after["step"] == 10 and torch.equal(after["recipe"]["class_weights"], class_weights)

    L = torch.linspace(0, 100, 48 * 64).reshape(1, 1, 48, 64)
    predictions = {}
    for blend in ("0.0", "0.5"):
        weights = tmp_path / blend / "gan.safetensors"
        result = CliRunner().invoke(cli, ["train", "export", str(run), "--out", str(weights), "--checkpoint",
                                          "last", "--config", f"class_blend={blend}"])
        assert result.exit_code == 0, result.output
        model, _ = load_checkpoint(weights)
        assert (model.config.class_head, model.config.class_blend) == (1.0, float(blend))
        assert "class_head=1.0" in (tmp_path / blend / "gan.md").read_text()
        predictions[blend] = Colorizer.from_checkpoint(weights, precision="fp32").predict_ab(L)
    assert all(torch.isfinite(p).all() and p.shape == (1, 2, 48, 64) for p in predictions.values())
    assert not torch.allclose(predictions["0.0"], predictions["0.5"], atol=1e-3)  # the head's colour counts


def test_weights_that_differ_elsewhere_still_do_not_fit(tmp_path):
    head = build_model("gan", HEAD)
    other = build_model("gan", {**TINY["gan"], "decoder_channels": [32, 16, 8, 8]})
    with pytest.raises(TrainingError, match="does not fit this gan model"):
        _load_into(head, other.state_dict(), "other.safetensors", "gan")
    _load_into(head, build_model("gan", TINY["gan"]).state_dict(), "plain.safetensors", "gan")  # only the head is new
