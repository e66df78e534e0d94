"""Old emulsions' colour sensitivity, so that training inputs look as the archivist's photographs do.

Before panchromatic film (common from the 1920s-30s) plates saw little or no red: wet collodion and early
dry plates (1850s-1880s) mostly blue, orthochromatic plates and films (1880s-1920s) blue and green. Skies
print white, red lips, bricks and rust nearly black. A network that learnt only from CIE L reads a white
sky as cloud or wall, so for a share of training crops the input is the lightness of the gray such an
emulsion records (a weighted sum of linear RGB), while the target ab stays the photo's own.
"""

import torch

from colorize_cli.colour.lab import LUMINANCE_WEIGHTS

# Rough shares of linear R, G, B that each emulsion records (broad-band summaries of their spectral
# curves, not measurements); each sums to 1, so a neutral gray keeps its lightness.
ORTHOCHROMATIC = (0.0, 0.55, 0.45)
BLUE_SENSITIVE = (0.0, 0.15, 0.85)


def emulsion_weights(generator: torch.Generator) -> torch.Tensor:
    """A random emulsion: panchromatic (CIE Y) mixed by a uniform share with orthochromatic or blue-sensitive."""
    old = ORTHOCHROMATIC if torch.rand((), generator=generator) < 0.5 else BLUE_SENSITIVE
    share = float(torch.rand((), generator=generator))
    return (1 - share) * torch.tensor(LUMINANCE_WEIGHTS) + share * torch.tensor(old)
