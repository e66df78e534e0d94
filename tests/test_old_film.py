"""Old-emulsion lightness for training inputs: the weighted lightness, the emulsions drawn, the crops."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from colorize_cli.colour.lab import LUMINANCE_WEIGHTS, normalize_l, rgb_to_lab, weighted_lightness
from colorize_cli.train.datasets import DatasetError, PhotoCrops
from colorize_cli.train.old_film import BLUE_SENSITIVE, ORTHOCHROMATIC, emulsion_weights

SKY, BRICK, GRAY = (0.35, 0.6, 0.95), (0.7, 0.25, 0.15), (0.5, 0.5, 0.5)


def _patch(rgb, size=16):
    return torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1).expand(3, size, size).clone()


def test_luminance_weights_give_the_cie_lightness_that_skimage_computes():
    rgb = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lightness = weighted_lightness(rgb, torch.tensor(LUMINANCE_WEIGHTS))
    expected = rgb2lab(rgb.permute(1, 2, 0).numpy())[..., 0]
    assert lightness.shape == (1, 9, 11)
    np.testing.assert_allclose(lightness[0].numpy(), expected, atol=1e-4)


def test_red_blind_emulsions_print_skies_light_reds_dark_and_grays_unchanged():
    for weights in (ORTHOCHROMATIC, BLUE_SENSITIVE):
        weights = torch.tensor(weights, dtype=torch.float64)
        assert float(weights.sum()) == pytest.approx(1)
        sky, brick, gray = (float(weighted_lightness(_patch(c), weights).mean()) for c in (SKY, BRICK, GRAY))
        assert sky > float(rgb_to_lab(_patch(SKY))[0].mean()) + 5
        assert brick < float(rgb_to_lab(_patch(BRICK))[0].mean()) - 10
        assert gray == pytest.approx(float(rgb_to_lab(_patch(GRAY))[0].mean()), abs=1e-6)


def test_drawn_emulsions_lie_between_panchromatic_and_the_old_ones_and_vary():
    generator = torch.Generator().manual_seed(1)
    draws = torch.stack([emulsion_weights(generator) for _ in range(200)])
    torch.testing.assert_close(draws.sum(1), torch.ones(200), atol=1e-6, rtol=0)
    assert (draws[:, 0] <= LUMINANCE_WEIGHTS[0] + 1e-6).all()  # never more red than CIE Y
    assert float(draws[:, 0].min()) < 0.02 and float(draws[:, 0].max()) > 0.19
    assert float(draws[:, 2].max()) > 0.8  # blue-sensitive plates are drawn too


class _TwoPatchStore:
    """One photo: a sky-blue top half over a brick-red bottom half."""

    def __len__(self):
        return 1

    def pixels(self, i):
        pixels = np.empty((32, 32, 3), np.uint8)
        pixels[:16], pixels[16:] = np.uint8(np.array(SKY) * 255), np.uint8(np.array(BRICK) * 255)
        return pixels


def _items(old_film, augment=True, draws=30):
    torch.manual_seed(5)
    dataset = PhotoCrops(_TwoPatchStore(), np.array([-1]), crop_size=32, augment=augment, old_film=old_film)
    return [dataset[0] for _ in range(draws)]


def test_a_share_of_training_crops_get_old_film_lightness_and_keep_their_colour():
    own = _items(0.0)
    film = _items(0.5)
    photo_l = own[0]["l"]
    assert all(torch.equal(item["l"], photo_l) for item in own)  # each row is uniform: flips change nothing
    changed = [not torch.allclose(item["l"], photo_l, atol=1e-6) for item in film]
    assert 5 <= sum(changed) <= 25  # about half of 30
    for item, other in zip(film, own, strict=True):
        torch.testing.assert_close(item["ab"], other["ab"])  # the target is always the photo's colour
        if not torch.allclose(item["l"], photo_l, atol=1e-6):
            assert item["l"][0, :16].mean() > photo_l[0, :16].mean()  # the sky prints lighter
            assert item["l"][0, 16:].mean() < photo_l[0, 16:].mean()  # the bricks darker
    expected = normalize_l(rgb_to_lab(torch.from_numpy(_TwoPatchStore().pixels(0)).permute(2, 0, 1).float() / 255)[:1])
    torch.testing.assert_close(photo_l, expected)
    # Validation's centre crops keep the photos' own lightness.
    assert all(torch.equal(item["l"], photo_l) for item in _items(1.0, augment=False, draws=5))
    with pytest.raises(DatasetError, match="old_film must be a share"):
        PhotoCrops(_TwoPatchStore(), np.array([-1]), crop_size=32, old_film=1.5)
