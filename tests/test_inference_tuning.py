"""Inference tuning: folded BatchNorm gives the same colours; bf16 stays close; precision choices."""

import pytest
import torch

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.models import MODEL_NAMES, build_model
from colorize_cli.models.inference_tuning import (
    PrecisionError,
    autocast_dtype,
    fold_batchnorm,
    native_bf16,
    tune_for_inference,
)


def _trained_looking(name):
    """A model whose BatchNorms have non-trivial statistics, as after training."""
    torch.manual_seed(0)
    model = build_model(name)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_folding_batchnorm_keeps_the_prediction(name):
    model = _trained_looking(name)
    side = max(32, model.size_multiple)
    x = torch.rand(2, 1, 2 * side, 3 * side) * 2 - 1
    with torch.inference_mode():
        before = model.predict_ab(x)
        tuned = tune_for_inference(model)
        after = tuned.predict_ab(x.contiguous(memory_format=torch.channels_last))
    assert (after - before).abs().max() < 1e-4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tuned.modules())


def test_fold_counts_only_conv_batchnorm_pairs():
    block = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.BatchNorm2d(4))
    assert fold_batchnorm(block) == 1
    assert isinstance(block[1], torch.nn.Identity) and isinstance(block[3], torch.nn.BatchNorm2d)


def test_precision_choices():
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("auto", cpu) == (torch.bfloat16 if native_bf16(cpu) else None)
    with pytest.raises(PrecisionError):
        autocast_dtype("fp16", cpu)
    if not native_bf16(cpu):
        with pytest.raises(PrecisionError, match="no native bf16"):
            autocast_dtype("bf16", cpu)


@pytest.mark.skipif(not native_bf16(torch.device("cpu")), reason="this CPU has no native bf16")
def test_bf16_inference_stays_close_to_fp32():
    model = _trained_looking("gan")
    L = torch.rand(1, 1, 128, 192) * 100
    fp32 = Colorizer(model, precision="fp32").predict_low(L).ab
    bf16 = Colorizer(model, precision="bf16").predict_low(L).ab
    assert (bf16 - fp32).abs().mean() < 0.5 and (bf16 - fp32).abs().max() < 4  # Lab units
