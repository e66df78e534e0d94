"""Zhang et al. 2016 classification (seed 004 §3.3): logits over the 313 ab bins, annealed-mean decoding."""

from dataclasses import dataclass

import torch
from torch import nn

from colorize_cli.colour.ab_bins import NUM_BINS, decode_to_unit
from colorize_cli.models.base import ColorizationModel, conv_bn_relu


@dataclass
class ClassificationConfig:
    """Channel width of the first stage (doubled three times on the way down) and the decoding temperature."""

    width: int = 32
    temperature: float = 0.38

    def __post_init__(self):
        if self.width < 1:
            raise ValueError(f"classification width must be at least 1, got {self.width}.")
        if self.temperature <= 0:
            raise ValueError(f"classification temperature must be positive, got {self.temperature}.")


class ClassificationModel(ColorizationModel):
    """Three stride-2 stages to 1/8, dilated convs for context, one learned 2x upsampling, 313 logits at 1/4."""

    name = "classification"

    def __init__(self, config: ClassificationConfig | None = None):
        super().__init__()
        self.config = config or ClassificationConfig()
        w = self.config.width
        self.net = nn.Sequential(
            conv_bn_relu(1, w), conv_bn_relu(w, w, stride=2),
            conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w, stride=2),
            conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w, stride=2),
            conv_bn_relu(4 * w, 8 * w),
            conv_bn_relu(8 * w, 8 * w, dilation=2), conv_bn_relu(8 * w, 8 * w, dilation=2),
            nn.ConvTranspose2d(8 * w, 4 * w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(),
            conv_bn_relu(4 * w, 4 * w),
            nn.Conv2d(4 * w, NUM_BINS, 1),
        )

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Bin logits [B,313,H/4,W/4] from normalised L [B,1,H,W]."""
        # Like Zhang et al., classify at 1/4 size: the loss is taken there (16x less memory than full size).
        return self.net(l_norm)

    def predict_ab(self, l_norm: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Unit-scale ab at the input's size, decoded by the annealed mean (config temperature by default)."""
        return decode_to_unit(self(l_norm), self.config.temperature if temperature is None else temperature,
                              l_norm.shape[-2:])
