"""Encoder/fusion/decoder colorizer (seeds 000 §III and 003) with a global-feature branch.

As in seed 000 §III, the global branch is an ImageNet classifier: its class probabilities, repeated over
the encoder's grid, are fused by a 1x1 conv. Ours is the pretrained EfficientNet-Lite0 (frozen; the seeds
use InceptionResNetV2). `global_branch="joint"` keeps the compact branch learnt with the rest, optionally
supervised by scene labels as in Iizuka et al. 2016.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorize_cli.models import efficientnet_lite
from colorize_cli.models.base import ColorizationModel

GLOBAL_BRANCHES = ("efficientnet_lite0", "joint")


@dataclass
class AutoencoderConfig:
    """`width` scales every layer (32 gives the seeds' 256-channel encoder output). The joint branch's
    vector has `global_dim` values and an optional head of `num_scenes` labels (0 = no head); the pretrained
    branch gives the 1000 ImageNet class probabilities."""

    width: int = 32
    global_dim: int = 256
    num_scenes: int = 0
    global_branch: str = "efficientnet_lite0"
    chroma_gain: float = 1.0  # decoding: predicted ab times this (set at export; 1 while training)

    def __post_init__(self):
        if not self.chroma_gain > 0:
            raise ValueError(f"autoencoder chroma_gain must be positive, got {self.chroma_gain}.")
        if self.global_branch not in GLOBAL_BRANCHES:
            raise ValueError(
                f"autoencoder global_branch must be one of {', '.join(GLOBAL_BRANCHES)}, got {self.global_branch!r}."
            )
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
        if self.config.global_branch == "joint":
            # Average pooling makes the global vector independent of the working size.
            self.global_net = nn.Sequential(
                _conv_relu(8 * w, 8 * w, stride=2), _conv_relu(8 * w, 8 * w, stride=2),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, g), nn.ReLU(),
            )
            self.classifier = None
        else:
            self.global_net = None
            self.classifier = efficientnet_lite.EfficientNetLite0().requires_grad_(False)
            g = efficientnet_lite.NUM_CLASSES
        self.fusion = nn.Sequential(nn.Conv2d(8 * w + g, 8 * w, 1), nn.ReLU())
        self.decoder = nn.Sequential(
            _conv_relu(8 * w, 4 * w), _up(),
            _conv_relu(4 * w, 2 * w), _up(),
            _conv_relu(2 * w, w), _up(),
            _conv_relu(w, w), _conv_relu(w, w // 2),
            nn.Conv2d(w // 2, 2, 3, padding=1), nn.Tanh(),
        )
        self.scene_head = nn.Linear(g, self.config.num_scenes) if self.config.num_scenes else None

    def init_pretrained(self) -> None:
        if self.classifier is not None:
            self.classifier.load_state_dict(efficientnet_lite.imagenet_state_dict())

    def train(self, mode: bool = True):
        super().train(mode)
        if self.classifier is not None:
            self.classifier.eval()  # frozen: its BatchNorm keeps ImageNet's statistics
        return self

    def global_vector(self, l_norm: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The image-level vector [B, D] that the fusion layer tiles over the encoder's grid."""
        if self.classifier is None:
            return self.global_net(features)
        # The classifier sees the working image nearly as it is (pooling makes it size-free): at the usual
        # 256 px that is close to its 224 px training size, and resizing 128 px training crops up to 224
        # would triple the cost of a training step for little. Only thin or tiny images are stretched, to
        # a multiple of its stride 32 and at least 64 px, where its deepest map is 2 px.
        height, width = (max(2, round(side / 32)) * 32 for side in l_norm.shape[-2:])
        if (height, width) != tuple(l_norm.shape[-2:]):
            l_norm = F.interpolate(l_norm, size=(height, width), mode="bilinear", align_corners=False)
        return self.classifier.classify(l_norm).float().softmax(dim=1).to(features.dtype)

    def forward_with_scene(self, l_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unit-scale ab [B,2,H,W] and scene logits [B,num_scenes] (None without a scene head)."""
        features = self.encoder(l_norm)
        global_vector = self.global_vector(l_norm, features)
        tiled = global_vector[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        ab = self.decoder(self.fusion(torch.cat([features, tiled], dim=1)))
        scenes = self.scene_head(global_vector) if self.scene_head is not None else None
        return ab, scenes

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab [B,2,H,W] from normalised L [B,1,H,W]."""
        return self.forward_with_scene(l_norm)[0]
