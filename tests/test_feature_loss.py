"""The gan's optional feature loss: a frozen colour ImageNet classifier compares coloured and true photos."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from skimage.color import lab2rgb, rgb2lab

from colorize_cli.colour.lab import ab_to_unit, normalize_l
from colorize_cli.models import build_model
from colorize_cli.models.efficientnet_lite import colour_imagenet_network, rgb_to_network_input
from colorize_cli.train.feature_loss import ColourFeatureLoss, lab_photo
from colorize_cli.train.loop import train
from tests.test_train import TINY, quiet, records, tiny_config, write_photos


@pytest.fixture(scope="module")
def feature_loss():
    return ColourFeatureLoss()


def _lab_tensors(rgb: np.ndarray, size: int = 224):
    """(normalised L [1,1,s,s], unit ab [1,2,s,s]) of an RGB photo."""
    lab = torch.from_numpy(rgb2lab(rgb)).float().permute(2, 0, 1)[None]
    lab = F.interpolate(lab, size=(size, size), mode="bilinear", antialias=True)
    return normalize_l(lab[:, :1]), ab_to_unit(lab[:, 1:])


@pytest.mark.parametrize(("photo", "classes"), [("chelsea", range(281, 286)), ("coffee", (967, 968))])
def test_the_colour_network_keeps_imagenets_colour_stem_and_recognises_colour_photos(photo, classes):
    network = colour_imagenet_network()
    assert network.stem[1].weight.shape[1] == 3
    rgb = torch.from_numpy(getattr(data, photo)()).float().permute(2, 0, 1)[None] / 255
    rgb = F.interpolate(rgb, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        logits = network.logits_of_input(rgb_to_network_input(rgb))
    assert logits.argmax(dim=1).item() in classes


# Some random colours lie outside sRGB with a negative Z; skimage's clamp of them is what is compared.
@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB")
def test_the_photo_it_looks_at_is_skimages_lab2rgb():
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 100, (8, 8)), rng.uniform(-80, 80, (8, 8)), rng.uniform(-80, 80, (8, 8))], -1)
    l_norm = normalize_l(torch.from_numpy(lab[..., 0]).float()[None, None])
    unit_ab = ab_to_unit(torch.from_numpy(lab[..., 1:]).float().permute(2, 0, 1)[None])
    ours = lab_photo(l_norm, unit_ab)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - lab2rgb(lab)).max() < 1e-4


def test_the_loss_is_zero_on_the_truth_grows_with_the_colour_error_and_trains_only_the_colour(feature_loss):
    l_norm, true_ab = _lab_tensors(data.chelsea())
    assert float(feature_loss(l_norm, true_ab, true_ab)) == pytest.approx(0.0, abs=1e-6)
    losses = [float(feature_loss(l_norm, true_ab * scale, true_ab)) for scale in (0.75, 0.5, 0.0)]
    assert 0 < losses[0] < losses[1] < losses[2]  # more chroma lost, further from the truth's features
    fake = (true_ab * 0.5).requires_grad_(True)
    feature_loss(l_norm, fake, true_ab).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in feature_loss.parameters())
    feature_loss.train()
    assert not feature_loss.network.training  # ImageNet's BatchNorm statistics, never a batch's


def test_negative_weights_are_refused():
    with pytest.raises(ValueError, match="feature_loss must be 0 or more"):
        build_model("gan", {"feature_loss": -1.0})


def test_a_gan_run_with_the_feature_loss_logs_it_in_both_phases_and_keeps_the_classifier_out(tmp_path):
    photos = write_photos(tmp_path / "photos", train=16, val=0, seed=2)
    run = tmp_path / "run"
    config = tiny_config("gan", photos, steps=6, warmup_steps=3, lr=1e-3, model_config={**TINY["gan"], "feature_loss": 5.0})
    train(config, run, session=quiet(), log=lambda line: None)
    logged = records(run, "train")
    assert all("features" in r and r["features"] > 0 for r in logged)  # in the warm-up and beside the critic
    assert {"adversarial", "critic"} <= logged[-1].keys()
    state = torch.load(run / "last.pt", weights_only=True)
    # The classifier is a training tool: neither the generator nor the recipe state carries it.
    assert not any("feature" in key for key in state["model"])
    assert not any("feature" in key for key in state["recipe"])
