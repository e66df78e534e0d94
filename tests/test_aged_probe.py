"""scripts/aged_probe.py: the fixed ageings of L and the colorizer that sees them, scored by evaluate_folder."""

import numpy as np
import pytest
import torch
from PIL import Image

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.evaluate.report import evaluate_folder
from tests.conftest import load_script, small_photo


@pytest.fixture(scope="module")
def probe():
    return load_script("scripts/aged_probe.py")


def _ramp():
    return torch.linspace(0, 100, 64 * 64).view(1, 1, 64, 64)


def test_fade_lifts_black_and_dims_white(probe):
    faded = probe.AGEINGS["fade"](torch.tensor([0.0, 50.0, 100.0]))
    np.testing.assert_allclose(faded.numpy(), [12.0, 51.0, 90.0])


def test_grain_has_its_strength_and_is_the_same_every_run(probe):
    L = torch.full((2, 1, 128, 128), 50.0)
    first, second = probe.AGEINGS["grain"](L), probe.AGEINGS["grain"](L)
    assert torch.equal(first, second)
    assert abs(float((first - L).std()) - probe.GRAIN_SIGMA) < 0.1
    assert abs(float((first - L).mean())) < 0.1


def test_blur_softens_an_edge_and_keeps_flat_areas(probe):
    L = torch.zeros(1, 1, 32, 32)
    L[..., 16:] = 100.0
    blurred = probe.AGEINGS["blur"](L)
    assert blurred.shape == L.shape
    assert 0 < float(blurred[0, 0, 0, 15]) < 50 < float(blurred[0, 0, 0, 16]) < 100
    assert float(blurred[0, 0, 0, 0]) == pytest.approx(0, abs=1e-4)
    assert float(blurred[0, 0, 0, 31]) == pytest.approx(100, abs=1e-3)


def test_aged_is_blur_then_fade_then_grain(probe):
    L = _ramp()
    expected = probe.AGEINGS["grain"](probe.AGEINGS["fade"](probe.AGEINGS["blur"](L)))
    assert torch.equal(probe.AGEINGS["aged"](L), expected)


def test_the_wrapped_colorizer_colours_the_aged_lightness(probe, cnn_checkpoint):
    plain = Colorizer.from_checkpoint(str(cnn_checkpoint), "cpu")  # the same precision as aged_colorizer's
    aged = probe.aged_colorizer(str(cnn_checkpoint), None, "fade")
    L = _ramp()
    expected = plain.predict_ab(probe.AGEINGS["fade"](L))
    torch.testing.assert_close(aged.predict_ab(L), expected)
    assert not torch.allclose(aged.predict_ab(L), plain.predict_ab(L))
    assert aged.render_size == plain.render_size  # everything else is the wrapped colorizer's


def test_a_gain_is_refused_for_a_model_without_one(probe, cnn_checkpoint):
    with pytest.raises(SystemExit, match="no chroma_gain"):
        probe.aged_colorizer(str(cnn_checkpoint), 1.05, "clean")


def test_clean_input_scores_as_evaluate_does(probe, cnn_checkpoint, tmp_path):
    for i, name in enumerate(["astronaut", "chelsea", "coffee"]):
        Image.fromarray(small_photo(name, (40, 48))).save(tmp_path / f"{i}.png")
    plain = {"m": Colorizer.from_checkpoint(str(cnn_checkpoint), "cpu", precision="fp32")}
    clean = {"m": probe.AgedInput(Colorizer.from_checkpoint(str(cnn_checkpoint), "cpu", precision="fp32"),
                                  probe.AGEINGS["clean"])}
    aged = {"m": probe.AgedInput(Colorizer.from_checkpoint(str(cnn_checkpoint), "cpu", precision="fp32"),
                                 probe.AGEINGS["aged"])}
    scores = [evaluate_folder(tmp_path, c, crop=32, examples=0).methods[1] for c in (plain, clean, aged)]
    assert scores[0] == scores[1]
    assert scores[2].auc != scores[0].auc
