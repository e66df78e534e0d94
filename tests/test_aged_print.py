"""Aged-print inputs for training: blur, fade and grain of L, drawn by chance; the target colour untouched."""

import numpy as np
import pytest
import torch
from skimage.filters import gaussian

from colorize_cli.train import aged_print
from colorize_cli.train.aged_print import age_print, gaussian_blur
from colorize_cli.train.datasets import DatasetError, PhotoCrops


def _edge(size=32):
    """L [1,S,S]: a dark left half (L 20) beside a light right half (L 80)."""
    lightness = torch.full((1, size, size), 20.0)
    lightness[..., size // 2 :] = 80.0
    return lightness


def test_gaussian_blur_matches_scipy_and_keeps_a_flat_field():
    lightness = torch.rand(1, 24, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 100
    blurred = gaussian_blur(lightness, 2.0)
    # torch's "reflect" leaves the edge pixel out, which scipy (under skimage) calls "mirror"; both cut at 3 sigma.
    expected = gaussian(lightness[0].numpy(), sigma=2.0, mode="mirror", truncate=3.0, preserve_range=True)
    assert blurred.shape == lightness.shape
    np.testing.assert_allclose(blurred[0].numpy(), expected, atol=1e-6)
    flat = torch.full((1, 8, 8), 42.0)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    thin = torch.rand(1, 1, 9) * 100  # a 1 px strip cannot be reflected: it comes back as it was
    assert gaussian_blur(thin, 2.0).shape == thin.shape


def test_each_effect_does_what_an_old_print_shows(monkeypatch):
    edge = _edge()
    monkeypatch.setattr(aged_print, "EFFECT_CHANCE", 1.0)  # all three effects, every time
    for seed in range(20):
        aged = age_print(edge, torch.Generator().manual_seed(seed))
        assert aged.shape == edge.shape and float(aged.min()) >= 0 and float(aged.max()) <= 100
        # Fading lifts the blacks and dims the whites: the halves come closer together.
        left, right = aged[..., :, :12].mean(), aged[..., :, 20:].mean()
        assert float(right - left) < 60
    monkeypatch.setattr(aged_print, "EFFECT_CHANCE", 0.0)
    torch.testing.assert_close(age_print(edge, torch.Generator().manual_seed(0)), edge)


def test_effects_are_drawn_on_their_own_and_reproducibly():
    edge = _edge()
    draws = [age_print(edge, torch.Generator().manual_seed(seed)) for seed in range(64)]
    unchanged = sum(torch.equal(aged, edge) for aged in draws)
    assert 2 <= unchanged <= 20  # none of the three effects: 1/8 of the draws
    # The edge runs down the crop: blur and fade keep each column uniform, only grain varies it.
    grained = sum(float(aged[0, :, 0].std()) > 0.01 for aged in draws)
    assert 16 <= grained <= 48  # about half
    torch.testing.assert_close(age_print(edge, torch.Generator().manual_seed(3)), draws[3])


class _EdgeStore:
    """One photo: a dark blue left half beside a light orange right half."""

    def __len__(self):
        return 1

    def pixels(self, i):
        pixels = np.empty((32, 32, 3), np.uint8)
        pixels[:, :16], pixels[:, 16:] = (30, 40, 120), (240, 170, 90)
        return pixels


def _items(share, augment=True, draws=40):
    torch.manual_seed(5)
    dataset = PhotoCrops(_EdgeStore(), np.array([-1]), crop_size=32, augment=augment, aged_print=share)
    return [dataset[0] for _ in range(draws)]


def test_a_share_of_training_crops_are_aged_and_keep_their_colour():
    own, aged = _items(0.0), _items(0.5)
    clean = {item["l"].flip(-1).numpy().tobytes() for item in own} | {item["l"].numpy().tobytes() for item in own}
    changed = [item["l"].numpy().tobytes() not in clean for item in aged]
    assert 8 <= sum(changed) <= 30  # half of 40 are aged, and 1/8 of those by no effect
    targets = {item["ab"].numpy().tobytes() for item in own}
    assert all(item["ab"].numpy().tobytes() in targets for item in aged)  # the target is the photo's colour
    # Validation's centre crops keep the photos' own lightness.
    assert all(torch.equal(item["l"], own_item["l"]) for item, own_item in
               zip(_items(1.0, augment=False, draws=3), _items(0.0, augment=False, draws=3)))
    with pytest.raises(DatasetError, match="aged_print must be a share"):
        PhotoCrops(_EdgeStore(), np.array([-1]), crop_size=32, aged_print=-0.1)
