"""Zhang-style all-convolutional regression of ab (seeds 001 and 004 §3.2): 11 convs with BatchNorm."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

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


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    # Biases are kept before BatchNorm on purpose: seed 001 reports they improved its results.
    conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())


class RegressionModel(nn.Module):
    """Three stride-2 stages, two dilated convs for context, one learned 2x upsampling, tanh ab."""

    name = "regression"

    def __init__(self, config: RegressionConfig | None = None):
        super().__init__()
        self.config = config or RegressionConfig()
        w = self.config.width
        self.net = nn.Sequential(
            _conv_bn_relu(1, w), _conv_bn_relu(w, w, stride=2),
            _conv_bn_relu(w, 2 * w), _conv_bn_relu(2 * w, 2 * w, stride=2),
            _conv_bn_relu(2 * w, 4 * w), _conv_bn_relu(4 * w, 4 * w, stride=2),
            _conv_bn_relu(4 * w, 4 * w, dilation=2), _conv_bn_relu(4 * w, 4 * w, dilation=2),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            _conv_bn_relu(2 * w, 2 * w),
            nn.Conv2d(2 * w, 2, 1), nn.Tanh(),
        )

    @property
    def size_multiple(self) -> int:
        return 8

    @property
    def default_render_size(self) -> int:
        return 256

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab [B,2,H,W] from normalised L [B,1,H,W]."""
        # Like Zhang et al., predict chroma at 1/4 size, where it carries nearly all its
        # information, and upsample bilinearly (which keeps tanh's range).
        ab = self.net(l_norm)
        return F.interpolate(ab, size=l_norm.shape[-2:], mode="bilinear", align_corners=False)

    def predict_ab(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab at the input's size."""
        return self(l_norm)
