"""The model zoo: exact sizes, shapes, ranges, determinism, gradients and the config round trip."""

import dataclasses
import json

import pytest
import torch
from torch import nn

from colorize_cli.models import MODEL_NAMES, build_model, config_class
from colorize_cli.models.autoencoder import AutoencoderModel
from colorize_cli.models.gan import GanConfig, GanGenerator, PatchDiscriminator

NUM_BINS = 313


def _l_batch(size: int = 64, batch: int = 1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, size, size, generator=generator) * 2 - 1


def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_the_five_models_in_contract_order():
    assert MODEL_NAMES == ("cnn", "regression", "classification", "autoencoder", "gan")


def test_cnn_has_the_seed_tables_32202_parameters():
    # 000 §II: 80+584+1168+2320+4640+9248 (down) + 9248+4624+290 (up) = 32,202.
    assert _param_count(build_model("cnn")) == 32_202


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_model_predicts_unit_ab_at_input_size(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    assert model.name == name
    assert isinstance(model.config, config_class(name))
    assert model.default_render_size % model.size_multiple == 0
    assert 64 % model.size_multiple == 0
    l_norm = _l_batch()
    with torch.no_grad():
        raw = model(l_norm)
        ab = model.predict_ab(l_norm)
    assert raw.shape[:2] == (1, NUM_BINS if name == "classification" else 2)
    assert ab.shape == (1, 2, 64, 64)
    assert ab.dtype == torch.float32
    assert torch.isfinite(ab).all()
    assert ab.abs().max() <= 1.0
    if name != "classification":
        assert torch.equal(raw, ab)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_eval_mode_is_deterministic(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    l_norm = _l_batch(seed=1)
    with torch.no_grad():
        assert torch.equal(model.predict_ab(l_norm), model.predict_ab(l_norm))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_the_first_layer_in_train_mode(name):
    torch.manual_seed(0)
    model = build_model(name).train()
    # A batch of one at the training size: BatchNorm must still work (the GAN's 2x2 bottleneck).
    size = getattr(model.config, "train_size", 64)
    model(_l_batch(size, seed=2)).float().square().mean().backward()
    # A pretrained encoder's lower blocks are frozen: the first conv that trains is what must learn.
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.requires_grad)
    assert first_conv.weight.grad is not None
    assert first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_config_round_trips_through_json(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    saved = json.loads(json.dumps(dataclasses.asdict(model.config)))
    rebuilt = build_model(name, saved).eval()
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    l_norm = _l_batch(seed=3)
    with torch.no_grad():
        assert torch.equal(rebuilt.predict_ab(l_norm), model.predict_ab(l_norm))


def test_non_default_config_changes_the_architecture():
    small = build_model("gan", {"encoder": "scratch", "train_size": 64, "base_channels": 8, "max_channels": 32})
    assert small.config == GanConfig(encoder="scratch", train_size=64, base_channels=8, max_channels=32)
    assert _param_count(small) < _param_count(build_model("gan"))
    assert _param_count(build_model("regression", {"width": 8})) < _param_count(build_model("regression"))


def test_unknown_model_name_is_a_value_error_listing_the_names():
    with pytest.raises(ValueError, match="'deoldify'.*cnn, regression, classification, autoencoder, gan"):
        build_model("deoldify")
    with pytest.raises(ValueError, match="'deoldify'"):
        config_class("deoldify")


def test_unknown_config_keys_are_named():
    with pytest.raises(ValueError, match="'gan'.*depth, lr"):
        build_model("gan", {"lr": 1e-3, "train_size": 64, "depth": 5})


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("regression", {"loss": "huber"}),
        ("gan", {"train_size": 4}),
        ("gan", {"dropout": 1.0}),
        ("gan", {"encoder": "resnet"}),
        ("gan", {"finetune_from": 17}),
        ("gan", {"chroma_gain": 0.0}),
        ("autoencoder", {"global_branch": "inception"}),
        ("autoencoder", {"num_scenes": -1}),
    ],
)
def test_invalid_config_values_are_value_errors(name, config):
    with pytest.raises(ValueError, match=next(iter(config))):
        build_model(name, config)


@pytest.mark.parametrize(("train_size", "depth"), [(8, 2), (64, 5), (128, 6), (256, 7), (96, 5)])
def test_gan_depth_reaches_a_2x2_bottleneck(train_size, depth):
    generator = GanGenerator(GanConfig(encoder="scratch", train_size=train_size, base_channels=4, max_channels=8)).unet
    assert len(generator.down) == depth
    assert generator.size_multiple == 2**depth
    bottleneck = train_size // 2**depth
    assert 2 <= bottleneck < 4
    with torch.no_grad():
        x = _l_batch(train_size)
        for block in generator.down:
            x = block(x)
    assert x.shape[-2:] == (bottleneck, bottleneck)


def test_gan_render_size_is_a_multiple_of_its_depth():
    assert GanGenerator(GanConfig(train_size=128)).default_render_size == 224  # the encoder's ImageNet size
    assert GanGenerator(GanConfig(train_size=512)).default_render_size == 512
    assert GanGenerator(GanConfig(encoder="scratch", train_size=96, base_channels=4, max_channels=8)).default_render_size == 256
    # The pretrained encoder needs multiples of 32 whatever the training size.
    assert GanGenerator(GanConfig(train_size=96)).size_multiple == 32


def test_gan_runs_at_other_multiples_of_its_size_multiple():
    generator = build_model("gan", {"encoder": "scratch", "train_size": 64, "base_channels": 8,
                                    "max_channels": 16}).eval()
    with torch.no_grad():
        ab = generator.predict_ab(torch.zeros(2, 1, 96, 160))
    assert ab.shape == (2, 2, 96, 160)


def test_gan_dropout_only_in_the_first_decoder_blocks():
    generator = GanGenerator(GanConfig(encoder="scratch", train_size=128, base_channels=4, max_channels=8,
                                       dropout_blocks=2)).unet
    with_dropout = [any(isinstance(m, nn.Dropout) for m in block.modules()) for block in generator.up]
    assert with_dropout == [True, True, False, False, False]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in generator.down[0].modules())


def test_gan_init_is_he_normal():
    torch.manual_seed(0)
    generator = GanGenerator(GanConfig(encoder="scratch", train_size=64, base_channels=32, max_channels=64)).unet
    weight = generator.down[2][0].weight  # 64 x 64 x 4 x 4, fan_in 1024
    assert weight.std().item() == pytest.approx((2 / 1024) ** 0.5, rel=0.05)
    assert weight.mean().abs().item() < 0.002


def test_patch_discriminator_returns_logits_per_patch_and_trains():
    config = GanConfig(train_size=64, base_channels=8, max_channels=32)
    discriminator = PatchDiscriminator(config).train()
    l_norm, ab = _l_batch(seed=4), torch.rand(1, 2, 64, 64) * 2 - 1
    logits = discriminator(l_norm, ab)
    assert logits.shape == (1, 1, 8, 8)  # three stride-2 blocks
    # Logits, not probabilities: BCE-with-logits accepts them and the loss reaches the first layer.
    nn.functional.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 0.9)).backward()
    assert discriminator.net[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError):  # it needs L and ab: 3 input channels
        discriminator(l_norm, l_norm)


def test_autoencoder_scene_head_is_optional():
    l_norm = _l_batch(seed=5, batch=2)
    ab, scenes = AutoencoderModel().eval().forward_with_scene(l_norm)
    assert ab.shape == (2, 2, 64, 64) and scenes is None
    model = build_model("autoencoder", {"num_scenes": 7, "width": 8, "global_dim": 16, "global_branch": "joint"}).eval()
    with torch.no_grad():
        ab, scenes = model.forward_with_scene(l_norm)
        # The global vector is pooled, so scene logits do not depend on the working size.
        _, scenes_large = model.forward_with_scene(torch.zeros(2, 1, 128, 96))
    assert ab.shape == (2, 2, 64, 64)
    assert scenes.shape == (2, 7)
    assert scenes_large.shape == (2, 7)


@pytest.mark.parametrize("name", ["gan", "autoencoder"])
def test_chroma_gain_scales_the_prediction_within_tanh_range(name):
    torch.manual_seed(0)
    model = build_model(name, {"encoder": "scratch"} if name == "gan" else {"global_branch": "joint"}).eval()
    l_norm = _l_batch(seed=6)
    with torch.no_grad():
        torch.nn.init.normal_(model.decoder[-2].weight if name == "autoencoder" else model.unet.out[0].weight, std=5.0)
        plain = model.predict_ab(l_norm)
        model.config.chroma_gain = 1.5
        boosted = model.predict_ab(l_norm)
    assert torch.allclose(boosted, (plain * 1.5).clamp(-1, 1))
    assert boosted.abs().max() <= 1.0 and (plain.abs() > 0.7).any()
