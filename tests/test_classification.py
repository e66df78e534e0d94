"""The classification model: logits over the 313 bins at 1/4 size, annealed-mean ab, gradients, temperature."""

import pytest
import torch
from torch import nn

from colorize_cli.colour.ab_bins import annealed_mean, bin_centers
from colorize_cli.colour.lab import AB_SCALE
from colorize_cli.models.classification import ClassificationConfig, ClassificationModel


def _model(**config) -> ClassificationModel:
    torch.manual_seed(0)
    return ClassificationModel(ClassificationConfig(**config))


def _l_norm(batch: int = 1, size: int = 64) -> torch.Tensor:
    return torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_forward_gives_313_logits_at_a_quarter_of_the_input_size():
    model = _model().eval()
    assert model.name == "classification"
    assert model.size_multiple == 8 and model.default_render_size % 8 == 0
    with torch.no_grad():
        logits = model(_l_norm())
    assert logits.shape == (1, 313, 16, 16)
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 3e6  # measured: 2,475,609


def test_predict_ab_is_the_upsampled_annealed_mean_in_unit_scale():
    model = _model().eval()
    l_norm = _l_norm(batch=2)
    with torch.no_grad():
        ab = model.predict_ab(l_norm)
        low = annealed_mean(model(l_norm), 0.38) / AB_SCALE
    assert ab.shape == (2, 2, 64, 64)
    # the annealed mean stays inside the bins' hull: |a|, |b| <= 110
    assert ab.abs().max() <= bin_centers().abs().max() / AB_SCALE
    assert torch.allclose(ab.mean(dim=(2, 3)), low.mean(dim=(2, 3)), atol=1e-3)


def test_temperature_override_and_config_default_agree():
    model = _model(temperature=0.2).eval()
    l_norm = _l_norm()
    with torch.no_grad():
        assert torch.equal(model.predict_ab(l_norm), model.predict_ab(l_norm, temperature=0.2))
        assert not torch.equal(model.predict_ab(l_norm), model.predict_ab(l_norm, temperature=1.0))


def test_gradients_reach_every_layer():
    model = _model(width=8).train()
    logits = model(_l_norm(batch=2, size=32))
    target = torch.randint(0, 313, (2, 8, 8))
    nn.functional.cross_entropy(logits, target).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_config_is_checked():
    with pytest.raises(ValueError, match="width"):
        ClassificationConfig(width=0)
    with pytest.raises(ValueError, match="temperature"):
        ClassificationConfig(temperature=0.0)
