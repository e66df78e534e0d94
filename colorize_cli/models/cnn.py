"""The simple CNN of seed 000 §II: a 32,202-parameter baseline regressing ab from L."""

from dataclasses import dataclass

import torch
from torch import nn

from colorize_cli.models.base import ColorizationModel


@dataclass
class CnnConfig:
    """The seed's table fixes every layer, so this model has no hyper-parameters."""


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def _up() -> nn.Upsample:
    return nn.Upsample(scale_factor=2, mode="nearest")  # as Keras' UpSampling2D in the seed


class CnnModel(ColorizationModel):
    """Six 3x3 convs down to 1/8 size, three upsample+conv steps back, tanh ab output."""

    name = "cnn"

    def __init__(self, config: CnnConfig | None = None):
        super().__init__()
        self.config = config or CnnConfig()
        # The table gives no strides; the three stride-2 steps sit where the seed's source network
        # (Wallner's "beta" colorizer) has them, which is what makes the three upsamplings fit.
        self.net = nn.Sequential(
            _conv(1, 8, stride=2), nn.ReLU(),
            _conv(8, 8), nn.ReLU(),
            _conv(8, 16), nn.ReLU(),
            _conv(16, 16, stride=2), nn.ReLU(),
            _conv(16, 32), nn.ReLU(),
            _conv(32, 32, stride=2), nn.ReLU(),
            _up(), _conv(32, 32), nn.ReLU(),
            _up(), _conv(32, 16), nn.ReLU(),
            _up(), _conv(16, 2), nn.Tanh(),
        )

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab [B,2,H,W] from normalised L [B,1,H,W]."""
        return self.net(l_norm)
