"""Inference tuning: folded BatchNorm gives the same colours; bf16 stays close; precision choices."""

import pytest
import torch

from colorize_cli.colorize import colorizer as colorizer_module
from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.models import MODEL_NAMES, build_model
from colorize_cli.models.inference_tuning import (
    ConvActivation,
    PackedConv,
    PrecisionError,
    SubPixelConvTranspose,
    _input_shapes,
    autocast_dtype,
    cast_weights,
    fold_batchnorm,
    fold_padding,
    fuse_activations,
    native_bf16,
    pack_weights,
    subpixel_outputs,
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


@pytest.mark.parametrize("kernel, stride, groups", [(3, 1, 1), (5, 1, 8), (3, 2, 1), (5, 2, 8), (3, 2, 8)])
def test_folded_padding_gives_the_same_numbers(kernel, stride, groups):
    # TensorFlow "same": symmetric at stride 1; one more pixel right and bottom at stride 2 on even sizes.
    torch.manual_seed(kernel + stride)
    total = kernel - stride
    pad = torch.nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))
    block = torch.nn.Sequential(pad, torch.nn.Conv2d(8, 16, kernel, stride=stride, groups=groups, bias=False))
    x = torch.randn(2, 8, 24, 36)
    with torch.inference_mode():
        before = block(x)
        assert fold_padding(block) == 1
        after = block(x)
    assert not any(isinstance(m, torch.nn.ZeroPad2d) for m in block.modules())
    assert after.shape == before.shape and torch.allclose(after, before, atol=1e-5)


def test_padding_that_is_neither_kind_stays():
    block = torch.nn.Sequential(torch.nn.ZeroPad2d((2, 0, 2, 0)), torch.nn.Conv2d(1, 1, 3))
    assert fold_padding(block) == 0 and isinstance(block[0], torch.nn.ZeroPad2d)


@pytest.mark.parametrize("activation", [torch.nn.ReLU, torch.nn.ReLU6])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_fused_activation_is_the_conv_then_the_activation(activation, precision):
    if precision == "bf16" and not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16")
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.Identity(), activation())
    x = (torch.randn(1, 4, 16, 20) * 8).contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else None
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        before = block(x)
        assert fuse_activations(block) == 1 and isinstance(block[0], ConvActivation)
        after = block(x)
    assert after.dtype == before.dtype
    assert torch.equal(after, before) if precision == "bf16" else torch.allclose(after, before, atol=1e-5)
    assert (before == 0).any() and ((before == 6).any() or activation is torch.nn.ReLU)  # both clamps exercised


def test_the_tuned_pretrained_gan_has_no_pads_clamps_or_per_call_casts_left():
    colorizer = Colorizer(tune_for_inference(build_model("gan")), precision="auto")
    modules = list(colorizer.model.modules())
    assert not any(isinstance(m, (torch.nn.ZeroPad2d, torch.nn.BatchNorm2d)) for m in modules)
    # Each ReLU6 left is a fused conv's fallback, not a pass of its own.
    assert not any(isinstance(child, torch.nn.ReLU6) for m in modules if isinstance(m, torch.nn.Sequential)
                   for child in m)
    assert sum(isinstance(m, ConvActivation) for m in modules) >= 30
    if colorizer.autocast_dtype is not None:
        convs = [m for m in modules if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
        assert {m.weight.dtype for m in convs} == {torch.bfloat16}


def _without_packing(name, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(colorizer_module, "pack_weights", lambda model, example: 0)
        return Colorizer(tune_for_inference(_trained_looking(name)), precision="auto")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_packed_weights_give_the_same_numbers_at_any_size(name, monkeypatch):
    if not native_bf16(torch.device("cpu")):
        pytest.skip("weights are packed for bf16 only; this CPU has no native bf16")
    packed = Colorizer(tune_for_inference(_trained_looking(name)), precision="auto")
    plain = _without_packing(name, monkeypatch)
    assert not any(isinstance(m, PackedConv) for m in plain.model.modules())
    if name == "gan":  # the seeds' cnn has neither transposed convolutions nor maps at stride 16
        assert sum(isinstance(m, PackedConv) for m in packed.model.modules()) > 20
    with torch.inference_mode():
        for shape in [(64, 96), (96, 64), (160, 224)]:  # packed at the working size, a square
            L = torch.rand(1, 1, *shape) * 100
            assert torch.equal(packed.predict_low(L).ab, plain.predict_low(L).ab), shape


def test_only_transposed_and_deep_convolutions_are_packed():
    if not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16")
    model = tune_for_inference(build_model("gan"))
    cast_weights(model, torch.bfloat16)
    example = torch.zeros(1, 1, 224, 224).contiguous(memory_format=torch.channels_last)
    count = pack_weights(model, example)
    packed = [m for m in model.modules() if isinstance(m, PackedConv)]
    assert count == len(packed) > 0 and sum(m.transposed for m in packed) == 4  # the decoder's (the output is sub-pixel)
    deep = [m for m in packed if not m.transposed]
    shapes = _input_shapes(model, example, deep)
    assert deep and all(shape[-2] * shape[-1] <= 14 * 14 for shape in shapes.values())


def test_packed_layouts_follow_the_thread_count_and_shape_and_stay_few():
    if not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16")
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.ConvTranspose2d(16, 8, 4, 2, 1), torch.nn.Identity(), torch.nn.ReLU())
    cast_weights(block, torch.bfloat16)
    assert pack_weights(block, torch.zeros(1, 16, 8, 8)) == 1 and isinstance(block[0], PackedConv)
    assert isinstance(block[2], torch.nn.Identity)  # the ReLU runs inside the packed call
    threads = torch.get_num_threads()
    try:
        with torch.inference_mode():
            for count, side in [(1, 5), (2, 5), (1, 5), (1, 6), (1, 7), (1, 8), (2, 9)]:
                torch.set_num_threads(count)
                x = torch.randn(1, 16, side, side + 1, dtype=torch.bfloat16).contiguous(
                    memory_format=torch.channels_last)
                assert torch.equal(block(x), block[0].fallback(x)), (count, side)
    finally:
        torch.set_num_threads(threads)
    assert list(block[0]._layouts) == [(1, (1, 16, s, s + 1)) for s in (6, 7, 8)] + [(2, (1, 16, 9, 10))]


@pytest.mark.parametrize("channels", [(48, 2), (5, 3), (1, 1)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("size", [(112, 144), (7, 9), (1, 1), (3, 1)])
def test_a_sub_pixel_convolution_is_the_transposed_one(channels, bias, size):
    torch.manual_seed(sum(channels) + sum(size))
    transposed = torch.nn.ConvTranspose2d(*channels, 4, stride=2, padding=1, bias=bias)
    x = torch.randn(2, channels[0], *size)
    with torch.inference_mode():
        expected = torch.tanh(transposed(x))
        got = SubPixelConvTranspose(transposed, torch.nn.Tanh())(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == expected.shape == (2, channels[1], 2 * size[0], 2 * size[1])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_only_narrow_output_layers_become_sub_pixel_and_in_bf16_stay_close():
    torch.manual_seed(0)
    block = torch.nn.Sequential(
        torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1), torch.nn.ReLU(),  # wide: stays
        torch.nn.ConvTranspose2d(8, 2, 4, stride=2, padding=1), torch.nn.Tanh(),
        torch.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1),  # another kernel: stays
    )
    x = torch.randn(1, 16, 10, 12).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        before = block(x)
        assert subpixel_outputs(block) == 1
        assert isinstance(block[2], SubPixelConvTranspose) and isinstance(block[3], torch.nn.Identity)
        assert isinstance(block[0], torch.nn.ConvTranspose2d) and isinstance(block[4], torch.nn.ConvTranspose2d)
        torch.testing.assert_close(block(x), before, atol=1e-5, rtol=1e-5)
        if native_bf16(torch.device("cpu")):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                assert (block(x).float() - before).abs().max() < 0.05
