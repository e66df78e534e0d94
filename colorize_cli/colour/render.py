"""Full-resolution rendering: original L plus the fitted chroma coefficients to sRGB, fused and in strips.

The guided upsampler models ab locally as slope * L/100 + offset, with smooth coefficients fitted at the
working size. Lab -> XYZ only needs fx = fy + a/500 and fz = fy - b/200, which are then linear in L too:
fx = L * P + Q and fz = L * R + S. So the four coefficient planes are folded once at the working size,
and each full-resolution pixel costs two multiply-adds, three cubes, one 3x3 matrix and a look-up table
for the sRGB curve, instead of upsampling ab, building Lab and converting it generically.
Bilinear interpolation is linear, so folding before it gives exactly what folding after it would.
On the CPU one compiled pass does all of it (render_kernel); elsewhere eager torch calls do it in strips.
"""

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from colorize_cli.colour.lab import (
    _F_INV_EPS,
    _F_SLOPE,
    _RGB_FROM_XYZ,
    _WHITE,
    _linear_to_srgb,
)
from colorize_cli.colour.render_kernel import render_pixels

# Full-resolution pixels per strip of the torch path: the temporaries (~60 B/px) stay in the CPU's cache,
# and the ~60 torch calls per strip (holding the GIL, which the other batch workers want) stay few.
STRIP_PIXELS = 1 << 17
# Steps of the linear-light -> 8-bit sRGB table: fine enough that at most a rare pixel rounds one code
# differently (the curve's steepest slope, 12.92, moves 0.025 of a code per half step).
LINEAR_STEPS = 1 << 16


def fold_coefficients(slope, offset, saturation=1.0):
    """(P, Q, R, S) planes [B,4,h,w] from the guided-filter slope and offset of ab (each [B,2,h,w])."""
    slope, offset = slope.float() * saturation, offset.float() * saturation
    slope_a, slope_b = slope.unbind(1)
    offset_a, offset_b = offset.unbind(1)
    # the guide is L/100; fy = (L + 16)/116
    P = 1 / 116 + slope_a / 50000
    Q = 16 / 116 + offset_a / 500
    R = 1 / 116 - slope_b / 20000
    S = 16 / 116 - offset_b / 200
    return torch.stack([P, Q, R, S], dim=1)


@cache
def _srgb8_table(device):
    """8-bit sRGB of each step of linear light, taken at the step's centre: indexed by trunc(linear * steps)."""
    linear = (torch.arange(LINEAR_STEPS, dtype=torch.float64) + 0.5) / LINEAR_STEPS
    return (_linear_to_srgb(linear) * 255).round().to(torch.uint8).to(device)


@cache
def _srgb_curve():
    """sRGB at LINEAR_STEPS + 1 evenly spaced nodes of linear light, for linear interpolation (float32).

    The curve bends most just above its linear toe, and even there interpolating between nodes this close
    errs by under 0.01 of a 16-bit code.
    """
    return _linear_to_srgb(torch.arange(LINEAR_STEPS + 1, dtype=torch.float64) / LINEAR_STEPS).float().numpy()


def _xyz_to_linear_rgb():
    # the white point folded into the matrix: rgb = M @ (white * f^-1(f))
    return _RGB_FROM_XYZ * _WHITE


def _taps(low, full):
    """Bilinear taps (below, above, weight) from each of `full` positions into `low` ones.

    F.interpolate's convention (bilinear, align_corners=False); an unchanged size leaves positions as they are.
    """
    source = np.maximum((np.arange(full) + 0.5) * (low / full) - 0.5, 0)
    below = np.floor(source)
    return below.astype(np.int64), np.minimum(below + 1, low - 1).astype(np.int64), (source - below).astype(np.float32)


def _f_inv(f):
    """CIE's inverse of f: f^3 above 6/29, the linear segment below; without torch.where (2.5x slower here).

    The segment is the cube's tangent at the knee, so cube(max(f, knee)) + segment(min(f, knee)) - knee^3
    is the cube above the knee and the segment below it.
    """
    cube = f.clamp(min=_F_INV_EPS)
    cube = cube * cube * cube
    return cube.add_(f.clamp(max=_F_INV_EPS), alpha=1 / _F_SLOPE).sub_(_F_INV_EPS**3 + 16 / 116 / _F_SLOPE)


class StripRenderer:
    """Renders rows of one image: interpolates the folded planes to full width once, then row by row."""

    def __init__(self, folded, height, width):
        """`folded`: one image's (P, Q, R, S) planes [1,4,h,w] at the working size."""
        self.height, self.width = height, width
        self.device = folded.device
        low_height = folded.shape[-2]
        # Columns now (cheap: only h rows); rows per strip later. Same maths as F.interpolate(bilinear,
        # align_corners=False): at an unchanged height it leaves the rows as they are.
        self.columns = F.interpolate(folded, size=(low_height, width), mode="bilinear", align_corners=False)[0]
        self.row_below, self.row_above, self.row_weight = (
            torch.from_numpy(taps).to(self.device) for taps in _taps(low_height, height)
        )
        self.matrix = _xyz_to_linear_rgb().tolist()  # plain floats for the scalar maths

    def linear_rgb(self, L_rows, top, scale=1.0):
        """Linear-light RGB [3, rows, W] (unclipped, times `scale`) of L rows [rows, W] from row `top`.

        L_rows: float32 on the renderer's device. The planes go through each step together: fewer torch
        calls, which hold the GIL that the other batch workers want.
        """
        stop = top + L_rows.shape[0]
        below = self.columns.index_select(1, self.row_below[top:stop])
        above = self.columns.index_select(1, self.row_above[top:stop])
        P, Q, R, S = torch.lerp(below, above, self.row_weight[top:stop, None]).unbind(0)
        f = torch.empty((3, *L_rows.shape), dtype=L_rows.dtype, device=L_rows.device)
        torch.addcmul(Q, L_rows, P, out=f[0])
        torch.mul(L_rows, 1 / 116, out=f[1]).add_(16 / 116)
        torch.addcmul(S, L_rows, R, out=f[2]).clamp_(min=0)  # as skimage: an impossible negative Z becomes 0
        xyz = _f_inv(f)
        # Plane by plane: a [N,3] x [3,3] matmul or an interleaved layout is several times slower here.
        rgb = torch.empty_like(xyz)
        for plane, row in zip(rgb, self.matrix):
            torch.mul(xyz[0], scale * row[0], out=plane).add_(xyz[1], alpha=scale * row[1])
            plane.add_(xyz[2], alpha=scale * row[2])
        return rgb

    def write_rows(self, out_rows, L_rows, top):
        """Fill out_rows (numpy [rows, W, 3] uint8, uint16 or float32) with the sRGB of L rows from row `top`."""
        if out_rows.dtype == np.uint8:
            steps = self.linear_rgb(L_rows, top, scale=LINEAR_STEPS)
            index = steps.clamp_(0, LINEAR_STEPS - 1).to(torch.int32)
            # index_select on the flat index: ~18x faster than advanced indexing on CPU
            values = _srgb8_table(self.device).index_select(0, index.view(-1)).view(index.shape)
        else:
            values = _linear_to_srgb(self.linear_rgb(L_rows, top).clamp_(0, 1))
            if out_rows.dtype == np.uint16:
                values = values.mul_(65535).round_().to(torch.int32)
        for channel, plane in enumerate(values.cpu().numpy()):  # one channel at a time: numpy's fast copy loop
            out_rows[..., channel] = plane


def render(L, folded, bit_depth=None, device="cpu", lightness_of_code=None, allocate=np.empty):
    """sRGB (H, W, 3) numpy array of the full-resolution L under one image's folded planes [1,4,h,w].

    L: float32 L* (H, W), or integer codes whose L* is lightness_of_code[code]. bit_depth 8 or 16 gives
    codes of that depth, None float32 in [0, 1]. The CPU runs the compiled kernel (into
    `allocate(shape, dtype)`), other devices torch.
    """
    if torch.device(device).type == "cpu":
        return _render_compiled(L, folded, bit_depth, lightness_of_code, allocate)
    return render_with_torch(L, folded, bit_depth, device, lightness_of_code)


def warm_up(device="cpu") -> None:
    """Compile (or load from numba's cache) the CPU kernels for 8-bit, 16-bit and float output now, so
    that the first photo of a batch does not pay it (0.5 s cached, about 2 s the very first time)."""
    if torch.device(device).type != "cpu":
        return
    L, folded = np.full((2, 2), 50.0, np.float32), torch.zeros(1, 4, 1, 1)
    for bit_depth in (8, 16, None):
        render(L, folded, bit_depth)
    # a gray photo's read-only codes (photos.io.read_lightness): 8-bit ones give 8 bits, 16-bit either
    for dtype, depths in ((np.uint8, (8,)), (np.uint16, (8, 16))):
        codes = np.zeros((2, 2), dtype)
        codes.flags.writeable = False
        for bit_depth in depths:
            render(codes, folded, bit_depth, lightness_of_code=np.zeros(np.iinfo(dtype).max + 1, np.float32))


def render_with_torch(L, folded, bit_depth=None, device="cpu", lightness_of_code=None):
    """render() by eager torch calls in strips: the path for CUDA, and the reference of the compiled kernel."""
    height, width = L.shape
    renderer = StripRenderer(folded.to(device), height, width)
    out = _output(L.shape, bit_depth)
    strip_rows = max(1, STRIP_PIXELS // width)
    for top in range(0, height, strip_rows):
        rows = L[top : top + strip_rows]
        rows = np.ascontiguousarray(rows, np.float32) if lightness_of_code is None else lightness_of_code[rows]
        renderer.write_rows(out[top : top + strip_rows], torch.from_numpy(rows).to(device, non_blocking=True), top)
    return out


def _render_compiled(L, folded, bit_depth, lightness_of_code, allocate=np.empty):
    height, width = L.shape
    planes = np.ascontiguousarray(folded[0].detach().cpu().numpy(), np.float32)
    if lightness_of_code is None:
        L = np.ascontiguousarray(L, np.float32)
    elif len(lightness_of_code) <= np.iinfo(L.dtype).max:  # the kernel does not check its indices
        raise ValueError(f"{len(lightness_of_code)} lightness values cannot cover {L.dtype} codes")
    else:
        lightness_of_code = np.ascontiguousarray(lightness_of_code, np.float32)
    out = _output(L.shape, bit_depth, allocate)
    srgb = _srgb8_table(torch.device("cpu")).numpy() if bit_depth == 8 else _srgb_curve()
    render_pixels(
        L, lightness_of_code, planes, _taps(planes.shape[1], height), _taps(planes.shape[2], width),
        _xyz_to_linear_rgb().numpy().astype(np.float32), _F_INV_EPS, _F_SLOPE, srgb, out,
    )
    return out


def _output(shape, bit_depth, allocate=np.empty):
    return allocate((*shape, 3), {None: np.float32, 8: np.uint8, 16: np.uint16}[bit_depth])
