"""pix2pix-style conditional GAN (seeds 000 §IV and 002): U-Net generator and patch discriminator.

The generator's encoder is the ImageNet-pretrained EfficientNet-Lite0 by default (DeOldify's recipe: a
pretrained U-Net generator), or, with `encoder="scratch"`, the seeds' own conv 4x4 stride 2 encoder.
"""

from dataclasses import dataclass

import torch
from torch import nn

from colorize_cli.colour.ab_bins import NUM_BINS, decode_to_unit
from colorize_cli.models import efficientnet_lite
from colorize_cli.models.base import ColorizationModel, conv_bn_relu

ENCODERS = ("efficientnet_lite0", "scratch")
# The class head reads the decoder level at stride 4 (index 2 of the four) through one 3x3 conv this wide.
CLASS_LEVEL, CLASS_HEAD_WIDTH = 2, 128
WARMUP_LOSSES = ("l1", "smooth_l1", "l2", "euclidean")
GAN_PIXEL_LOSSES = ("l1", "euclidean")


@dataclass
class GanConfig:
    """`encoder` picks the generator's encoder. The pretrained one feeds decoder blocks of
    `decoder_channels` (strides 16, 8, 4, 2); its blocks from `finetune_from` on are fine-tuned after the
    warm-up at `encoder_lr_scale` times the learning rate (16: frozen throughout). The scratch encoder's
    depth follows `train_size` down to a 2x2 bottleneck, widths doubling from `base_channels` up to
    `max_channels`; the discriminator (both encoders) uses the same widths and the options starting with
    `disc_`. `warmup_loss` is the generator's loss in the warm-up, `pixel_loss` its loss beside the critic
    after it (pix2pix: l1; euclidean: the ab distance that AuC measures).

    `class_head` > 0 adds Zhang et al.'s 313-bin head on the pretrained decoder at stride 4, trained by
    cross-entropy weighed `class_head` against 100 x the pixel loss, its bins rebalanced by Zhang's
    `class_rebalance` lambda (1: not rebalanced, 0.5: Zhang's); it learns at `class_head_lr_scale` times
    the rate (it starts fresh where the rest is fine-tuned). Decoding blends `class_blend` of the head's
    annealed mean (temperature `class_temperature`) into the regressed ab (set at export; 0: the head is
    not run).

    `feature_loss` > 0 adds, weighed that much against 100 x the pixel loss, the feature loss of a frozen
    ImageNet classifier that sees the coloured and the true photo (Johnson et al.; a training option
    only: the classifier is not part of the generator)."""

    encoder: str = "efficientnet_lite0"
    decoder_channels: tuple = (256, 128, 64, 32)
    chroma_gain: float = 1.0  # decoding: predicted ab times this (set at export; 1 while training)
    warmup_loss: str = "l1"
    pixel_loss: str = "l1"
    finetune_from: int = 11
    encoder_lr_scale: float = 0.1
    train_size: int = 128
    base_channels: int = 32
    max_channels: int = 256
    dropout: float = 0.5
    dropout_blocks: int = 3
    disc_layers: int = 3
    disc_dropout: float = 0.25
    class_head: float = 0.0
    class_rebalance: float = 1.0
    class_head_lr_scale: float = 10.0
    class_blend: float = 0.0  # decoding: share of the class head's colour (set at export; 0 while training)
    class_temperature: float = 0.38
    feature_loss: float = 0.0

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"gan encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}.")
        if self.warmup_loss not in WARMUP_LOSSES:
            raise ValueError(f"gan warmup_loss must be one of {', '.join(WARMUP_LOSSES)}, got {self.warmup_loss!r}.")
        if self.pixel_loss not in GAN_PIXEL_LOSSES:
            raise ValueError(f"gan pixel_loss must be one of {', '.join(GAN_PIXEL_LOSSES)}, got {self.pixel_loss!r}.")
        self.decoder_channels = tuple(self.decoder_channels)  # JSON gives a list back
        if len(self.decoder_channels) != 4 or min(self.decoder_channels) < 1:
            raise ValueError(f"gan decoder_channels must be 4 positive widths, got {self.decoder_channels}.")
        if not 0 <= self.finetune_from <= efficientnet_lite.NUM_BLOCKS:
            raise ValueError(f"gan finetune_from must be a block index 0-{efficientnet_lite.NUM_BLOCKS}, got {self.finetune_from}.")
        if not self.chroma_gain > 0:
            raise ValueError(f"gan chroma_gain must be positive, got {self.chroma_gain}.")
        if self.encoder_lr_scale < 0:
            raise ValueError(f"gan encoder_lr_scale must be 0 or more, got {self.encoder_lr_scale}.")
        if self.train_size < 8:
            raise ValueError(f"gan train_size must be at least 8, got {self.train_size}.")
        if not 1 <= self.base_channels <= self.max_channels:
            raise ValueError(
                f"gan channels need 1 <= base_channels <= max_channels, got {self.base_channels} and "
                f"{self.max_channels}."
            )
        for key in ("dropout", "disc_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"gan {key} must be in [0, 1), got {getattr(self, key)}.")
        if self.class_head < 0 or self.class_head_lr_scale < 0:
            raise ValueError(
                f"gan class_head and class_head_lr_scale must be 0 or more, got {self.class_head} and "
                f"{self.class_head_lr_scale}."
            )
        if self.class_head and self.encoder != "efficientnet_lite0":
            raise ValueError("gan class_head needs the pretrained encoder (encoder=efficientnet_lite0).")
        if self.feature_loss < 0:
            raise ValueError(f"gan feature_loss must be 0 or more, got {self.feature_loss}.")
        if not 0.0 < self.class_rebalance <= 1.0:
            raise ValueError(f"gan class_rebalance must be in (0, 1], got {self.class_rebalance}.")
        if not 0.0 <= self.class_blend <= 1.0:
            raise ValueError(f"gan class_blend must be in [0, 1], got {self.class_blend}.")
        if self.class_blend and not self.class_head:
            raise ValueError("gan class_blend needs a class head (class_head > 0) to blend in.")
        if not self.class_temperature > 0:
            raise ValueError(f"gan class_temperature must be positive, got {self.class_temperature}.")
        if self.dropout_blocks < 0 or self.disc_layers < 1:
            raise ValueError(
                f"gan needs dropout_blocks >= 0 and disc_layers >= 1, got {self.dropout_blocks} and "
                f"{self.disc_layers}."
            )

    @property
    def depth(self) -> int:
        """Number of stride-2 encoder blocks: the largest that leaves a bottleneck of at least 2x2."""
        # A 1x1 bottleneck would make BatchNorm fail in train mode on batches of one.
        return (self.train_size // 2).bit_length() - 1

    def channels(self, level: int) -> int:
        """Channel width of the encoder block at `level` (0 = first)."""
        return min(self.base_channels * 2**level, self.max_channels)


def init_he_normal(module: nn.Module) -> None:
    """He-normal weights and zero biases for every conv and linear layer under `module` (seed 000 §IV)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _down(in_channels: int, out_channels: int, norm: bool, dropout: float = 0.0) -> nn.Sequential:
    # A conv followed by BatchNorm needs no bias.
    layers = [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _up(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    layers = [
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ScratchUNet(nn.Module):
    """The seeds' U-Net: `depth` conv blocks down, transposed-conv blocks up, each concatenated with its mirror."""

    def __init__(self, config: GanConfig):
        super().__init__()
        c, depth = config, config.depth
        self.down = nn.ModuleList(
            _down(1 if i == 0 else c.channels(i - 1), c.channels(i), norm=i > 0) for i in range(depth)
        )
        # Up block j leaves level `level - 1`; every block but the innermost also takes its skip.
        self.up = nn.ModuleList(
            _up(
                c.channels(level) * (1 if level == depth - 1 else 2),
                c.channels(level - 1),
                c.dropout if j < c.dropout_blocks else 0.0,
            )
            for j, level in enumerate(range(depth - 1, 0, -1))
        )
        self.out = nn.Sequential(nn.ConvTranspose2d(2 * c.channels(0), 2, 4, stride=2, padding=1), nn.Tanh())
        init_he_normal(self)
        # He init on the layer feeding tanh saturates it (60% of outputs past 0.9) and stalls the L1
        # warm-up; pix2pix's N(0, 0.02) starts it near gray instead.
        nn.init.normal_(self.out[0].weight, std=0.02)

    @property
    def size_multiple(self) -> int:
        return 2 ** len(self.down)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        skips = []
        x = l_norm
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first up block directly
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.out(x)


class PretrainedUNet(nn.Module):
    """EfficientNet-Lite0 encoder with skips at strides 2-16, decoder of transposed-conv blocks to full size.

    The encoder's BatchNorm statistics stay as ImageNet left them (eval mode even in training): batches of
    small crops would only add noise to them.
    """

    size_multiple = 32

    def __init__(self, config: GanConfig):
        super().__init__()
        self.encoder = efficientnet_lite.EfficientNetLite0()
        # The classifier is not part of the U-Net; keeping it would only weigh on the weights file.
        del self.encoder.head, self.encoder.classifier
        skips = efficientnet_lite.FEATURE_CHANNELS[::-1]  # 320 at stride 32, then 112, 40, 24, 16
        ups, channels, widths = [], skips[0], []
        for index, (width, skip) in enumerate(zip(config.decoder_channels, skips[1:], strict=True)):
            ups.append(_up(channels, width, config.dropout if index < config.dropout_blocks else 0.0))
            channels = width + skip
            widths.append(channels)
        self.up = nn.ModuleList(ups)
        # Zhang et al. classify at stride 4: the third decoder level's output (with its skip).
        self.class_head = (
            nn.Sequential(conv_bn_relu(widths[CLASS_LEVEL], CLASS_HEAD_WIDTH), nn.Conv2d(CLASS_HEAD_WIDTH, NUM_BINS, 1))
            if config.class_head else None
        )
        self.out = nn.Sequential(nn.ConvTranspose2d(channels, 2, 4, stride=2, padding=1), nn.Tanh())
        init_he_normal(self.up)
        if self.class_head is not None:
            init_he_normal(self.class_head)
        # Pretrained features are large: pix2pix's N(0, 0.02) saturates tanh here (mean |ab| 0.75), while
        # N(0, 0.001) starts near gray and still passes gradients back (zeros would stop them at step 0).
        nn.init.normal_(self.out[0].weight, std=0.001)
        nn.init.zeros_(self.out[0].bias)
        self.finetune_from = config.finetune_from
        for index, block in enumerate(self.encoder.blocks):
            block.requires_grad_(index >= self.finetune_from)
        self.encoder.stem.requires_grad_(self.finetune_from == 0)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()
        return self

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The encoder's fine-tuned parameters (the rest of the encoder is frozen)."""
        return [p for p in self.encoder.parameters() if p.requires_grad]

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.forward_with_logits(l_norm, with_logits=False)[0]

    def forward_with_logits(self, l_norm: torch.Tensor, with_logits: bool = True):
        """(unit ab [B,2,H,W], bin logits [B,313,H/4,W/4] or None when there is no head or none is asked)."""
        features = self.encoder.features(l_norm)
        x, logits = features.pop(), None
        for level, block in enumerate(self.up):
            x = torch.cat([block(x), features.pop()], dim=1)
            if level == CLASS_LEVEL and with_logits and self.class_head is not None:
                logits = self.class_head(x)
        return self.out(x), logits


class GanGenerator(ColorizationModel):
    """The generator: a U-Net on the pretrained encoder or on the seeds' scratch encoder."""

    name = "gan"

    def __init__(self, config: GanConfig | None = None):
        super().__init__()
        self.config = config or GanConfig()
        self.unet = (PretrainedUNet if self.config.encoder == "efficientnet_lite0" else ScratchUNet)(self.config)

    def init_pretrained(self) -> None:
        if isinstance(self.unet, PretrainedUNet):
            self.unet.encoder.load_state_dict(
                _without_classifier(efficientnet_lite.imagenet_state_dict()), strict=True
            )

    def encoder_parameters(self) -> list[nn.Parameter]:
        return self.unet.encoder_parameters() if isinstance(self.unet, PretrainedUNet) else []

    @property
    def size_multiple(self) -> int:
        return self.unet.size_multiple

    @property
    def default_render_size(self) -> int:
        """At least the training crop, a multiple of `size_multiple`: 224 px for the pretrained encoder (the
        size it learned ImageNet at; 450 held-out photos scored AuC 90.76 there against 90.75 at 256, for
        0.77x the network's time), 256 px (the seeds' size) for the scratch one."""
        base = efficientnet_lite.IMAGENET_SIZE if isinstance(self.unet, PretrainedUNet) else 256
        size = max(self.config.train_size, base)
        return -(-size // self.size_multiple) * self.size_multiple

    def head_parameters(self) -> list[nn.Parameter]:
        """The class head's parameters (none without one): they learn at class_head_lr_scale."""
        head = getattr(self.unet, "class_head", None)
        return list(head.parameters()) if head is not None else []

    def fresh_parts(self) -> tuple[str, ...]:
        """State-dict prefixes that weights of the same model without them may lack (--init-from): the
        class head, which such a run adds and trains from scratch."""
        return ("unet.class_head.",) if self.head_parameters() else ()

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Unit-scale ab [B,2,H,W] from normalised L [B,1,H,W]."""
        return self.unet(l_norm)

    def forward_with_logits(self, l_norm: torch.Tensor):
        """(unit ab, class-head logits at stride 4 or None): what training with a class head needs."""
        if isinstance(self.unet, PretrainedUNet):
            return self.unet.forward_with_logits(l_norm)
        return self.unet(l_norm), None

    def predict_ab(self, l_norm: torch.Tensor) -> torch.Tensor:
        """The regressed ab, with `class_blend` of the class head's annealed mean blended in, times chroma_gain."""
        blend = self.config.class_blend
        if not blend:
            return super().predict_ab(l_norm)
        ab, logits = self.unet.forward_with_logits(l_norm)
        decoded = decode_to_unit(logits.float(), self.config.class_temperature, ab.shape[-2:])
        # Both lie in [-1, 1] (tanh; bin centres within 110 of 128), so their blend does too.
        return self.with_chroma_gain((1.0 - blend) * ab.float() + blend * decoded)


def _without_classifier(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith(("head.", "classifier."))}


class PatchDiscriminator(nn.Module):
    """Judges (L, ab) pairs per patch: logits [B,1,H/2^n,W/2^n] for n = `disc_layers` (BCE-with-logits)."""

    def __init__(self, config: GanConfig | None = None):
        super().__init__()
        self.config = config or GanConfig()
        c, n = self.config, self.config.disc_layers
        blocks = [
            _down(3 if i == 0 else c.channels(i - 1), c.channels(i), norm=i > 0, dropout=c.disc_dropout)
            for i in range(n)
        ]
        # A stride-1 block widens each logit's receptive field without shrinking the patch map.
        self.net = nn.Sequential(
            *blocks,
            nn.Conv2d(c.channels(n - 1), c.channels(n), 3, padding=1, bias=False),
            nn.BatchNorm2d(c.channels(n)),
            nn.LeakyReLU(0.2),
            nn.Dropout(c.disc_dropout),
            nn.Conv2d(c.channels(n), 1, 3, padding=1),
        )
        init_he_normal(self)

    def forward(self, l_norm: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Real/fake logits per patch for normalised L [B,1,H,W] and unit-scale ab [B,2,H,W]."""
        return self.net(torch.cat([l_norm, ab], dim=1))
