"""What every model of the zoo offers the trainer and the inference code, and shared building blocks."""

import torch
from torch import nn


class ColorizationModel(nn.Module):
    """Base of every registered model: a `name`, a dataclass `config`, and the inference interface."""

    name: str
    # H and W given to forward must be multiples of this (the caller pads or resizes).
    size_multiple = 8
    # Working size (short side, px) used at inference unless the user picks one.
    default_render_size = 256

    def predict_ab(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab [B,2,H,W] at the input's size; times the config's `chroma_gain` where it has one."""
        return self.with_chroma_gain(self(l_norm))

    def with_chroma_gain(self, ab: torch.Tensor) -> torch.Tensor:
        """Unit ab times the config's `chroma_gain` (if any), kept within tanh's range."""
        # Regression to the mean leaves L1/MSE predictions duller than the truth; a gain chosen on
        # held-out photos at export undoes that, within tanh's range.
        gain = getattr(self.config, "chroma_gain", 1.0)
        return ab if gain == 1.0 else (ab * gain).clamp(-1.0, 1.0)

    def init_pretrained(self) -> None:
        """Load pretrained parts (a fresh training run calls this; checkpoints overwrite them anyway)."""

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Pretrained parameters that are fine-tuned at a lower learning rate (none by default)."""
        return []

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of an added head that learn at a rate of their own (none by default)."""
        return []

    def fresh_parts(self) -> tuple[str, ...]:
        """State-dict prefixes of parts that weights of this model without them may lack: --init-from such
        weights trains these parts from scratch (none by default)."""
        return ()


def conv_bn_relu(in_channels, out_channels, stride=1, dilation=1, bias=False):
    """3x3 conv + BatchNorm + ReLU, padded to keep the size (divided by stride)."""
    conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=bias)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())
