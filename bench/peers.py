"""Architectures of two published colorization networks, for timing inference against ours.

- ECCV16: Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016, as in the authors'
  PyTorch port (github.com/richzhang/colorization, colorizers/eccv16.py). About 32.2 M parameters.
- DeOldifyUNet: the generator of DeOldify's "artistic" model (Jason Antic, github.com/jantic/DeOldify):
  a ResNet-34 encoder under fastai's DynamicUnet as modified by DeOldify (DynamicUnetDeep,
  nf_factor 1.5, self-attention at 1/8 scale). About 63.6 M parameters (the released
  ColorizeArtistic_gen.pth is ~255 MB of fp32).

Both are random-initialised: the published weights are not downloaded, and inference speed does not
depend on them. Written with torch only (no torchvision, no fastai). Each `forward(l)` takes L as
[B, 1, H, W] in 0..100 and returns [B, 2, H, W] (ab) or [B, 3, H, W] (RGB); H and W multiples of 32.
"""

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------------------
# ECCV16


def _eccv_block(widths, *, last_stride=1, dilation=1):
    """3x3 convs (with bias) each followed by ReLU, then one BatchNorm, as in the port's model1..model7."""
    layers = []
    for i, (cin, cout) in enumerate(pairwise(widths)):
        stride = last_stride if i == len(widths) - 2 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.BatchNorm2d(widths[-1]))


class ECCV16(nn.Module):
    """Zhang et al. 2016: a VGG-like trunk at 1/8 scale (dilated in the middle) that classifies each
    pixel into 313 quantised ab bins; the port decodes the softmax with a fixed 1x1 conv (the
    annealed-mean step is folded into it) and upsamples x4 bilinearly to the input size."""

    def __init__(self):
        super().__init__()
        self.model1 = _eccv_block([1, 64, 64], last_stride=2)
        self.model2 = _eccv_block([64, 128, 128], last_stride=2)
        self.model3 = _eccv_block([128, 256, 256, 256], last_stride=2)
        self.model4 = _eccv_block([256, 512, 512, 512])
        self.model5 = _eccv_block([512, 512, 512, 512], dilation=2)
        self.model6 = _eccv_block([512, 512, 512, 512], dilation=2)
        self.model7 = _eccv_block([512, 512, 512, 512])
        self.model8 = nn.Sequential(  # back up to 1/4 scale, then per-pixel logits over 313 bins
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 313, 1),
        )
        self.model_out = nn.Conv2d(313, 2, 1, bias=False)

    def forward(self, l):
        x = (l - 50.0) / 100.0  # the port's normalize_l
        for block in (self.model1, self.model2, self.model3, self.model4,
                      self.model5, self.model6, self.model7, self.model8):
            x = block(x)
        ab = self.model_out(torch.softmax(x, dim=1))
        ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
        return ab * 110.0  # the port's unnormalize_ab


# --------------------------------------------------------------------------------------------------
# DeOldify (artistic): ResNet-34 encoder + DynamicUnetDeep decoder


def _conv_relu_bn(cin, cout, ks=3, relu=True):
    """DeOldify's custom_conv_layer with its spectral+BatchNorm setting: conv (no bias), ReLU, BN."""
    layers = [nn.Conv2d(cin, cout, ks, padding=ks // 2, bias=False)]
    if relu:
        layers.append(nn.ReLU(True))
    return nn.Sequential(*layers, nn.BatchNorm2d(cout))


class _BasicBlock(nn.Module):
    """ResNet BasicBlock (He et al. 2016), as in torchvision's resnet34."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)), inplace=True)


def _resnet_stage(cin, cout, blocks, stride):
    return nn.Sequential(_BasicBlock(cin, cout, stride), *[_BasicBlock(cout, cout, 1) for _ in range(blocks - 1)])


class _SelfAttention(nn.Module):
    """SAGAN-style self-attention as in fastai v1: 1x1 query/key to C/8, value to C, attention over all
    H*W positions, and a residual scaled by gamma (0 at init, learnt; its value does not change speed)."""

    def __init__(self, c):
        super().__init__()
        self.query = nn.Conv1d(c, c // 8, 1, bias=False)
        self.key = nn.Conv1d(c, c // 8, 1, bias=False)
        self.value = nn.Conv1d(c, c, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        flat = x.flatten(2)  # [B, C, N]
        f, g, v = self.query(flat), self.key(flat), self.value(flat)
        beta = torch.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)  # [B, N, N]
        return (self.gamma * torch.bmm(v, beta) + flat).view(b, c, h, w)


class _PixelShuffleUp(nn.Module):
    """fastai's PixelShuffle_ICNR: 1x1 conv to 4*cout (+BN in DeOldify's blocks, bias in fastai's final
    one), ReLU, PixelShuffle x2, and optionally DeOldify's blur (replication pad + 2x2 average, against
    checkerboard artefacts)."""

    def __init__(self, cin, cout, blur, bn=True):
        super().__init__()
        self.conv = _conv_relu_bn(cin, cout * 4, ks=1, relu=False) if bn else nn.Conv2d(cin, cout * 4, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.blur = blur

    def forward(self, x):
        x = self.shuffle(F.relu(self.conv(x)))
        if self.blur:
            x = F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)
        return x


class _UnetBlockDeep(nn.Module):
    """DeOldify's UnetBlockDeep: upsample the deeper features to half their width, concatenate the
    BatchNorm'd skip, ReLU, then two 3x3 convs of width (concat width, halved on the last block)
    x nf_factor; the second optionally followed by self-attention."""

    def __init__(self, up_c, skip_c, final_div, nf_factor, self_attention):
        super().__init__()
        self.shuf = _PixelShuffleUp(up_c, up_c // 2, blur=True)  # the artistic model uses blur=True
        self.bn = nn.BatchNorm2d(skip_c)
        ni = up_c // 2 + skip_c
        nf = int((ni if final_div else ni // 2) * nf_factor)
        self.conv1 = _conv_relu_bn(ni, nf)
        self.conv2 = _conv_relu_bn(nf, nf)
        self.attn = _SelfAttention(nf) if self_attention else nn.Identity()
        self.out_channels = nf

    def forward(self, x, skip):
        x = torch.cat([self.shuf(x), self.bn(skip)], dim=1)
        return self.attn(self.conv2(self.conv1(F.relu(x))))


class DeOldifyUNet(nn.Module):
    """DeOldify "artistic" generator (ResNet-34, DynamicUnetDeep, nf_factor 1.5, self-attention).

    Widths follow DynamicUnetDeep for ResNet-34 at 256 px: middle 512->1024->512, then up blocks of
    768 (1/16), 768 + self-attention (1/8), 672 (1/4), 300 (1/2), a PixelShuffle to full size,
    concatenation of the 3-channel input, a 303-wide residual block and a 1x1 conv to RGB, squashed
    to (-3, 3) as with DeOldify's y_range. 63.6 M parameters.

    Approximated, none of which changes the conv shapes or the FLOPs to speak of:
    - spectral normalisation (weight norm on the last upsample) is left out: DeOldify wraps every
      decoder conv in it, which at inference costs one matrix-vector product per conv to rescale
      the weight, negligible beside the convs;
    - ICNR/kaiming initialisation is replaced by PyTorch defaults (the weights are random anyway);
    - the input is L/100 repeated to 3 channels, not ImageNet-normalised RGB of the gray image, and
      the output is not converted back to colour with the original luminance (post-processing
      outside the network);
    - the skip features are hooked from the same places as fastai's hooks (stem ReLU, layer1..3),
      but the nearest-neighbour resize DeOldify does on a size mismatch is not needed for H, W
      multiples of 32 and is omitted.
    """

    def __init__(self, nf_factor: float = 1.5):
        super().__init__()
        # encoder: torchvision resnet34 minus avgpool/fc, as fastai's create_body cuts it
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _resnet_stage(64, 64, 3, 1)
        self.layer2 = _resnet_stage(64, 128, 4, 2)
        self.layer3 = _resnet_stage(128, 256, 6, 2)
        self.layer4 = _resnet_stage(256, 512, 3, 2)
        # DynamicUnet puts BN + ReLU + a 2x-wide "middle_conv" on the encoder output
        self.middle = nn.Sequential(
            nn.BatchNorm2d(512), nn.ReLU(), _conv_relu_bn(512, 1024), _conv_relu_bn(1024, 512)
        )
        # up blocks, deepest first; skips are layer3, layer2, layer1, stem (256, 128, 64, 64 channels);
        # self-attention sits in the second block (fastai: i == n_blocks - 3), at 1/8 scale
        blocks, c = [], 512
        for i, skip_c in enumerate((256, 128, 64, 64)):
            block = _UnetBlockDeep(c, skip_c, final_div=i < 3, nf_factor=nf_factor, self_attention=i == 1)
            blocks.append(block)
            c = block.out_channels
        self.ups = nn.ModuleList(blocks)
        self.final_up = _PixelShuffleUp(c, c, blur=False, bn=False)  # 1/2 -> full size
        c += 3  # fastai's last_cross: concatenate the network input
        self.res = nn.Sequential(  # fastai res_block (spectral norm type: convs with bias, no BN)
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(True), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(True)
        )
        self.head = nn.Conv2d(c, 3, 1)

    def forward(self, l):
        x0 = (l / 100.0).repeat(1, 3, 1, 1)  # gray fed as 3 identical channels, as DeOldify does
        s0 = self.stem(x0)  # 1/2
        s1 = self.layer1(self.maxpool(s0))  # 1/4
        s2 = self.layer2(s1)  # 1/8
        s3 = self.layer3(s2)  # 1/16
        x = self.middle(self.layer4(s3))  # 1/32
        for block, skip in zip(self.ups, (s3, s2, s1, s0)):
            x = block(x, skip)
        x = torch.cat([self.final_up(x), x0], dim=1)
        x = x + self.res(x)
        return torch.sigmoid(self.head(x)) * 6.0 - 3.0  # fastai SigmoidRange(-3, 3)


PEERS = {"eccv16": ECCV16, "deoldify-resnet34": DeOldifyUNet}
