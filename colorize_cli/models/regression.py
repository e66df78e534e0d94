"""Zhang-style all-convolutional regression of ab (seeds 001 and 004 §3.2): 11 convs with BatchNorm."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorize_cli.models.base import ColorizationModel, conv_bn_relu

LOSSES = ("l1", "l2")


@dataclass
class RegressionConfig:
    """Channel width of the first stage (doubled twice on the way down) and the training loss."""

    width: int = 32
    loss: str = "l2"

    def __post_init__(self):
        if self.width < 1:
            raise ValueError(f"regression width must be at least 1, got {self.width}.")
        if self.loss not in LOSSES:
            raise ValueError(f"regression loss must be one of {', '.join(LOSSES)}, got {self.loss!r}.")


def _conv(in_channels, out_channels, stride=1, dilation=1):
    # Biases are kept before BatchNorm on purpose: seed 001 reports they improved its results.
    return conv_bn_relu(in_channels, out_channels, stride, dilation, bias=True)


class RegressionModel(ColorizationModel):
    """Three stride-2 stages, two dilated convs for context, one learned 2x upsampling, tanh ab."""

    name = "regression"

    def __init__(self, config: RegressionConfig | None = None):
        super().__init__()
        self.config = config or RegressionConfig()
        w = self.config.width
        self.net = nn.Sequential(
            _conv(1, w), _conv(w, w, stride=2),
            _conv(w, 2 * w), _conv(2 * w, 2 * w, stride=2),
            _conv(2 * w, 4 * w), _conv(4 * w, 4 * w, stride=2),
            _conv(4 * w, 4 * w, dilation=2), _conv(4 * w, 4 * w, dilation=2),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            _conv(2 * w, 2 * w),
            nn.Conv2d(2 * w, 2, 1), nn.Tanh(),
        )

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab [B,2,H,W] from normalised L [B,1,H,W]."""
        # Like Zhang et al., predict chroma at 1/4 size, where it carries nearly all its
        # information, and upsample bilinearly (which keeps tanh's range).
        ab = self.net(l_norm)
        return F.interpolate(ab, size=l_norm.shape[-2:], mode="bilinear", align_corners=False)
