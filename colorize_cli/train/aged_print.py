"""Aged prints: training inputs that look as scanned old photographs do, while the target colour stays the photo's.

The archivist's photographs are soft (old lenses, focus, enlargement), grainy (coarse emulsions, scans) and
faded (lifted blacks, dimmed whites, a bent tone curve). Measured on the 450 held-out photos, the gan that
learnt only from clean modern photos lost 2.0 AuC points and turned more garish when its input L was blurred,
grained and faded together, so a share of training crops gets such an input. Each effect is drawn on its
own, so the network also sees each alone.
"""

import torch
import torch.nn.functional as F

EFFECT_CHANCE = 0.5  # each of blur, fade and grain applies to an aged crop with this chance
BLUR_SIGMA = (0.5, 2.0)  # px at the crop's scale
FADE_BLACK = (0.0, 20.0)  # the L that black prints as
FADE_WHITE = (80.0, 100.0)  # the L that white prints as
FADE_GAMMA = (0.75, 1.33)  # the bend of the tone curve
GRAIN_SIGMA = (1.0, 6.0)  # L units


def _uniform(bounds, generator):
    low, high = bounds
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(generator):
    return float(torch.rand((), generator=generator)) < EFFECT_CHANCE


def gaussian_blur(lightness: torch.Tensor, sigma: float) -> torch.Tensor:
    """[1,H,W] blurred by a separable Gaussian of `sigma` px, edges reflected."""
    radius = max(1, round(3 * sigma))
    radius = min(radius, lightness.shape[-1] - 1, lightness.shape[-2] - 1)  # reflect padding needs a smaller pad
    if radius < 1:
        return lightness
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(lightness.dtype)
    padded = F.pad(lightness[None], (radius, radius, radius, radius), mode="reflect")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1))[0]


def fade(lightness: torch.Tensor, black: float, white: float, gamma: float) -> torch.Tensor:
    """L in [0,100] printed from `black` to `white` through a tone curve bent by `gamma`."""
    return black + (white - black) * (lightness.clamp(0, 100) / 100) ** gamma


def age_print(lightness: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """CIE L [1,H,W] in [0,100] as a random aged print would show it: blurred, faded and grained, each by chance."""
    aged = lightness
    if _chance(generator):
        aged = gaussian_blur(aged, _uniform(BLUR_SIGMA, generator))
    if _chance(generator):
        black, white = _uniform(FADE_BLACK, generator), _uniform(FADE_WHITE, generator)
        aged = fade(aged, black, white, _uniform(FADE_GAMMA, generator))
    if _chance(generator):
        noise = torch.randn(aged.shape, generator=generator, dtype=aged.dtype)
        aged = aged + _uniform(GRAIN_SIGMA, generator) * noise
    return aged.clamp(0, 100)
