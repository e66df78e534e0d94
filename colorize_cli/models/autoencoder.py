"""Encoder/fusion/decoder colorizer (seeds 000 §III and 003) with a jointly trained global branch.

The seeds fuse an ImageNet InceptionResNetV2 embedding; that network cannot be downloaded here, so a
compact global network learns the image-level context instead, optionally supervised by scene labels
as in Iizuka et al. 2016.
"""

from dataclasses import dataclass

import torch
from torch import nn

from colorize_cli.models.base import ColorizationModel


@dataclass
class AutoencoderConfig:
    """`width` scales every layer (32 gives the seeds' 256-channel encoder output); 0 scenes = no head."""

    width: int = 32
    global_dim: int = 256
    num_scenes: int = 0

    def __post_init__(self):
        if self.width < 2:
            raise ValueError(f"autoencoder width must be at least 2, got {self.width}.")
        if self.global_dim < 1:
            raise ValueError(f"autoencoder global_dim must be at least 1, got {self.global_dim}.")
        if self.num_scenes < 0:
            raise ValueError(f"autoencoder num_scenes must be 0 or more, got {self.num_scenes}.")


def _conv_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU())


def _up() -> nn.Upsample:
    return nn.Upsample(scale_factor=2, mode="nearest")


class AutoencoderModel(ColorizationModel):
    """Eight-conv encoder to 1/8 size, global vector tiled and fused by a 1x1 conv, six-conv decoder."""

    name = "autoencoder"

    def __init__(self, config: AutoencoderConfig | None = None):
        super().__init__()
        self.config = config or AutoencoderConfig()
        w, g = self.config.width, self.config.global_dim
        self.encoder = nn.Sequential(
            _conv_relu(1, w, stride=2), _conv_relu(w, 2 * w),
            _conv_relu(2 * w, 2 * w, stride=2), _conv_relu(2 * w, 4 * w),
            _conv_relu(4 * w, 4 * w, stride=2), _conv_relu(4 * w, 8 * w),
            _conv_relu(8 * w, 8 * w), _conv_relu(8 * w, 8 * w),
        )
        # Average pooling makes the global vector independent of the working size.
        self.global_net = nn.Sequential(
            _conv_relu(8 * w, 8 * w, stride=2), _conv_relu(8 * w, 8 * w, stride=2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, g), nn.ReLU(),
        )
        self.fusion = nn.Sequential(nn.Conv2d(8 * w + g, 8 * w, 1), nn.ReLU())
        self.decoder = nn.Sequential(
            _conv_relu(8 * w, 4 * w), _up(),
            _conv_relu(4 * w, 2 * w), _up(),
            _conv_relu(2 * w, w), _up(),
            _conv_relu(w, w), _conv_relu(w, w // 2),
            nn.Conv2d(w // 2, 2, 3, padding=1), nn.Tanh(),
        )
        self.scene_head = nn.Linear(g, self.config.num_scenes) if self.config.num_scenes else None

    def forward_with_scene(self, l_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unit-scale ab [B,2,H,W] and scene logits [B,num_scenes] (None without a scene head)."""
        features = self.encoder(l_norm)
        global_vector = self.global_net(features)
        tiled = global_vector[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        ab = self.decoder(self.fusion(torch.cat([features, tiled], dim=1)))
        scenes = self.scene_head(global_vector) if self.scene_head is not None else None
        return ab, scenes

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab [B,2,H,W] from normalised L [B,1,H,W]."""
        return self.forward_with_scene(l_norm)[0]
