"""bench/peers.py: the published colorization architectures used as speed baselines build, have the
published sizes, and map [B, 1, H, W] L to full-size ab / RGB."""

import pytest
import torch

from tests.conftest import load_script


@pytest.fixture(scope="module")
def peers():
    return load_script("bench/peers.py")


def test_eccv16_has_the_ports_size(peers):
    # richzhang/colorization's eccv16 has about 32.2 M parameters
    assert 30e6 <= peers.parameter_count(peers.ECCV16()) <= 34e6


def test_deoldify_has_the_artistic_models_size(peers):
    # DeOldify's ColorizeArtistic_gen.pth is ~255 MB of fp32, i.e. ~64 M parameters; the layout here
    # gives 63.6 M, and 55-72 M would still be within the intended ~10% of it
    assert 55e6 <= peers.parameter_count(peers.DeOldifyUNet()) <= 72e6


@pytest.mark.parametrize("name, channels", [("eccv16", 2), ("deoldify-resnet34", 3)])
def test_forward_keeps_the_input_size(peers, name, channels):
    torch.manual_seed(0)
    model = peers.PEERS[name]().eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 1, 64, 96) * 100)
    assert out.shape == (1, channels, 64, 96)
    assert torch.isfinite(out).all()
