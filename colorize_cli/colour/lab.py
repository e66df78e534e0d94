"""sRGB <-> CIE Lab (D65) in torch, matching skimage.color.rgb2lab / lab2rgb, plus the model scalings."""

import torch
from torch import Tensor

AB_SCALE = 128.0  # the one ab scaling: model outputs are tanh in [-1, 1], times AB_SCALE gives Lab ab
L_CENTER = 50.0
L_RANGE = 50.0

# sRGB primaries to XYZ (D65), and the 2-degree D65 white; the same numbers as skimage.
_XYZ_FROM_RGB = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
LUMINANCE_WEIGHTS = tuple(_XYZ_FROM_RGB[1].tolist())  # the Y row: L is the lightness of this sum
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
# CIE's (6/29)^3, 1/(3 (6/29)^2) and 6/29, rounded as skimage rounds them.
_F_EPS, _F_SLOPE, _F_INV_EPS = 0.008856, 7.787, 0.2068966


def _apply(matrix: Tensor, x: Tensor) -> Tensor:
    """Multiply every pixel's channel vector (dim -3) by a 3x3 matrix."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(x), x)


def _white(x: Tensor) -> Tensor:
    return _WHITE.to(x).view(3, 1, 1)


def _srgb_to_linear(v: Tensor) -> Tensor:
    # clamp inside each branch so that torch.where never back-propagates NaN from the unused one
    return torch.where(v > 0.04045, ((v.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, v / 12.92)


def _linear_to_srgb(v: Tensor) -> Tensor:
    return torch.where(v > 0.0031308, 1.055 * v.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, v * 12.92)


def _lab_f(t: Tensor) -> Tensor:
    return torch.where(t > _F_EPS, t.clamp(min=_F_EPS) ** (1 / 3), _F_SLOPE * t + 16 / 116)


def _lab_f_inv(f: Tensor) -> Tensor:
    return torch.where(f > _F_INV_EPS, f**3, (f - 16 / 116) / _F_SLOPE)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 1] (channel dim -3) to Lab with L in [0, 100]."""
    fx, fy, fz = _lab_f(_apply(_XYZ_FROM_RGB, _srgb_to_linear(rgb)) / _white(rgb)).unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """Lab (channel dim -3) to sRGB, clipped to [0, 1] like skimage unless clip=False."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    # skimage clamps a negative fz (an impossible negative Z) to 0 before inverting
    f = torch.stack([fy + a / 500, fy, (fy - b / 200).clamp(min=0)], dim=-3)
    rgb = _linear_to_srgb(_apply(_RGB_FROM_XYZ, _lab_f_inv(f) * _white(lab)))
    return rgb.clamp(0, 1) if clip else rgb


def rgb_to_l(rgb: Tensor) -> Tensor:
    """Lightness L in [0, 100] of sRGB pixels, shape [..., 1, H, W]."""
    return rgb_to_lab(rgb)[..., :1, :, :]


def weighted_lightness(rgb: Tensor, weights: Tensor) -> Tensor:
    """L in [0, 100], shape [..., 1, H, W], of the luminance `weights` . linear RGB (weights summing to 1).

    LUMINANCE_WEIGHTS give rgb_to_l; other weights give the lightness a film of another colour
    sensitivity records (train/old_film.py).
    """
    y = torch.einsum("c,...chw->...hw", weights.to(rgb), _srgb_to_linear(rgb)).unsqueeze(-3)
    return 116 * _lab_f(y) - 16


def gray_to_l(y: Tensor) -> Tensor:
    """L of sRGB-encoded gray values y in [0, 1] (any shape): the L of the colour (y, y, y)."""
    # the matrix's Y row sums to 1 and white has Y = 1, so Y/Yn of (y, y, y) is just the linearised y
    return 116 * _lab_f(_srgb_to_linear(y)) - 16


def l_to_gray(L: Tensor) -> Tensor:
    """The sRGB-encoded gray value y in [0, 1] whose colour (y, y, y) has lightness L: gray_to_l's inverse."""
    return _linear_to_srgb(_lab_f_inv((L + 16) / 116)).clamp(0, 1)


def normalize_l(L: Tensor) -> Tensor:
    """Model input: L in [0, 100] mapped to [-1, 1]."""
    return (L - L_CENTER) / L_RANGE


def ab_to_unit(ab: Tensor) -> Tensor:
    """Lab ab to the model's unit scale."""
    return ab / AB_SCALE


def unit_to_ab(x: Tensor) -> Tensor:
    """Model unit-scale ab back to Lab ab."""
    return x * AB_SCALE
