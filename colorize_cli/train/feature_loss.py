"""A feature (perceptual) loss: the frozen ImageNet classifier looks at the coloured and the true photo,
and their feature maps should agree (Johnson et al. 2016, which seed 002 cites).

Unlike L1, it weighs colour by what the classifier learned from a million colour photos: a wrong colour
on a leaf moves its features more than on a wall. The network is EfficientNet-Lite0 with its own colour
stem, frozen, its BatchNorm in eval mode; it is a training tool only and never part of a weights file.
"""

import torch
import torch.nn.functional as F
from torch import nn

from colorize_cli.colour.lab import L_CENTER, L_RANGE, lab_to_rgb, unit_to_ab
from colorize_cli.models import efficientnet_lite

# Compared at strides 4, 8 and 16 (feature levels 1-3): local colour and texture up to object parts; the
# stride-2 level is mostly edges, which L alone already fixes.
LEVELS = (1, 2, 3)
# Keeps each level's normalisation finite on a flat crop.
_EPS = 1e-6


def lab_photo(l_norm: torch.Tensor, unit_ab: torch.Tensor) -> torch.Tensor:
    """sRGB [B,3,H,W] in [0, 1] of normalised L and unit-scale ab, in float32 (the Lab maths needs it)."""
    lab = torch.cat([l_norm.float() * L_RANGE + L_CENTER, unit_to_ab(unit_ab.float())], dim=1)
    return lab_to_rgb(lab)


class ColourFeatureLoss(nn.Module):
    """Mean over the compared levels of the squared feature difference, each level divided by the true
    features' mean square, so that every level weighs alike whatever its scale."""

    def __init__(self):
        super().__init__()
        network = efficientnet_lite.colour_imagenet_network()
        del network.head, network.classifier
        self.network = network.requires_grad_(False)

    def train(self, mode: bool = True):
        # Frozen statistics: ImageNet's, not a batch's.
        return super().train(False)

    def _features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        found = self.network.features_of_input(efficientnet_lite.rgb_to_network_input(rgb), max(LEVELS) + 1)
        return [found[level] for level in LEVELS]

    def forward(self, l_norm: torch.Tensor, fake_ab: torch.Tensor, true_ab: torch.Tensor) -> torch.Tensor:
        """The loss of predicted unit ab `fake_ab` against `true_ab` on the same normalised L."""
        with torch.no_grad():
            targets = self._features(lab_photo(l_norm, true_ab))
        outputs = self._features(lab_photo(l_norm, fake_ab))
        per_level = [
            F.mse_loss(output.float(), target.float()) / (target.float().pow(2).mean() + _EPS)
            for output, target in zip(outputs, targets, strict=True)
        ]
        return torch.stack(per_level).mean()
