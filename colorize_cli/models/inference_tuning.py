"""Inference-only speed-ups: BatchNorm and zero padding folded into the convolutions, ReLU/ReLU6 fused
into oneDNN's convolution, other activations in place, channels-last, and bf16 where it is native, with
the weights cast once and, where it pays, kept in oneDNN's own layout (PackedConv).

Measured on a 2-core AVX-512 BF16 CPU (seeds' gan at 256x256, batch 1): 74 img/s as trained, 89 img/s with
BatchNorm folded and channels-last, 137 img/s with bf16 autocast on top; bf16 moves ab by at most 0.12
(mean 0.013). The pretrained gan pads before each of its 17 convolutions with a kernel above 1 and clamps
after most (ReLU6): folding the pads into the convolutions, the clamps into oneDNN's convolution and
casting the weights to bf16 once rather than at every call took a quarter off its time on one thread
(best of 20 at 256x352, beside a training run: 36.2 -> 26.1 ms), with the same numbers out.
"""

import threading
from collections import OrderedDict
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

PRECISIONS = ("auto", "fp32", "bf16")
PACKED_LAYOUTS = 4  # packed weights kept per convolution: (thread count, input shape) pairs in use


def _pointwise_convolution():
    """oneDNN's convolution with a fused activation (what torch.compile emits on CPU), or None without it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


_POINTWISE = _pointwise_convolution()
_TRANSPOSED_POINTWISE = getattr(torch.ops.mkldnn, "_convolution_transpose_pointwise", None) if _POINTWISE else None


class PrecisionError(ValueError):
    """The precision asked for cannot run on this device."""


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a convolution in a Sequential into it (in place, eval only).

    Returns how many were folded. The model must not be trained afterwards.
    """
    folded = 0
    for block, index, conv, norm in _neighbours(model):
        if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(norm, nn.BatchNorm2d):
            block[index] = fuse_conv_bn_eval(conv.eval(), norm.eval(), transpose=isinstance(conv, nn.ConvTranspose2d))
            block[index + 1] = nn.Identity()
            folded += 1
    return folded


def _neighbours(model: nn.Module):
    """(Sequential, index, its module at index, the next one) for every neighbouring pair in every Sequential.

    Read as the loop goes: a pair seen after its block changed shows the change.
    """
    for block in list(model.modules()):
        if isinstance(block, nn.Sequential):
            for index in range(len(block) - 1):
                yield block, index, block[index], block[index + 1]


def fold_padding(model: nn.Module) -> int:
    """Fold every ZeroPad2d directly before an unpadded Conv2d in a Sequential into the conv; in place.

    Symmetric padding becomes the conv's own. TensorFlow's "same" padding of a strided conv puts one more
    pixel right and bottom (a, a + 1): that is the conv's padding a + 1 with a row and a column of zero
    weights put before the kernel, so that every tap reads the pixel it read before. Either way the
    numbers are the same, without a padded copy of the input. Returns how many pads were folded.
    """
    folded = 0
    for block, index, pad, conv in _neighbours(model):
        if not (isinstance(pad, nn.ZeroPad2d) and isinstance(conv, nn.Conv2d)) or conv.padding != (0, 0) \
                or conv.padding_mode != "zeros" or conv.dilation != (1, 1):
            continue
        left, right, top, bottom = pad.padding
        if left == right and top == bottom:
            conv.padding = (top, left)
        elif right == left + 1 and bottom == top + 1:
            block[index + 1] = _shifted_kernel(conv, top + 1, left + 1)
        else:
            continue
        block[index] = nn.Identity()
        folded += 1
    return folded


def _shifted_kernel(conv: nn.Conv2d, pad_height: int, pad_width: int) -> nn.Conv2d:
    """`conv` with a zero row and column before its kernel and the given symmetric padding."""
    kernel = (conv.kernel_size[0] + 1, conv.kernel_size[1] + 1)
    shifted = nn.Conv2d(conv.in_channels, conv.out_channels, kernel, stride=conv.stride,
                        padding=(pad_height, pad_width), groups=conv.groups, bias=conv.bias is not None)
    shifted = shifted.to(conv.weight.device, conv.weight.dtype)
    with torch.no_grad():
        shifted.weight.copy_(F.pad(conv.weight, (1, 0, 1, 0)))
        if conv.bias is not None:
            shifted.bias.copy_(conv.bias)
    return shifted


def _onednn_activation(activation: nn.Module) -> tuple[str, list]:
    """oneDNN's post-op (algorithm, scalars) for a ReLU, ReLU6 or Tanh."""
    if isinstance(activation, nn.Tanh):
        return "tanh", []
    return ("hardtanh", [0.0, 6.0]) if isinstance(activation, nn.ReLU6) else ("relu", [])


def _activation_after(modules: list, index: int) -> int | None:
    """Position of the ReLU or ReLU6 that follows modules[index], past Identities (folded BatchNorms)."""
    after = index + 1
    while after < len(modules) and isinstance(modules[after], nn.Identity):
        after += 1
    return after if after < len(modules) and type(modules[after]) in (nn.ReLU, nn.ReLU6) else None


class ConvActivation(nn.Module):
    """A Conv2d and the ReLU, ReLU6 (or Tanh) after it, in one oneDNN call on CPU: the activation is applied as the
    convolution writes its output rather than in another pass over memory (those passes were 14-17 % of
    the pretrained gan's profiled time). Elsewhere, or without oneDNN, the two run one after the other."""

    def __init__(self, conv: nn.Conv2d, activation: nn.Module):
        super().__init__()
        self.conv, self.activation = conv, activation
        self.algorithm, self.scalars = _onednn_activation(activation)

    def forward(self, x):
        conv = self.conv
        weight, bias = conv.weight, conv.bias
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)  # what autocast would do: all operands in it
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        if _POINTWISE is None or x.device.type != "cpu" or x.dim() != 4 or x.dtype != weight.dtype:
            return self.activation(conv(x))
        return _POINTWISE(x, weight, bias, list(conv.padding), list(conv.stride), list(conv.dilation),
                          conv.groups, self.algorithm, self.scalars, "")


class SubPixelConvTranspose(nn.Module):
    """A ConvTranspose2d of kernel 4, stride 2 and padding 1 (and the Tanh after it) as the same sums in
    a 3x3 convolution that gives each input pixel's four output pixels as channels, put in place by
    PixelShuffle. oneDNN's transposed convolution is slow to write a map of few channels: the gan's
    last layer (48 -> 2 channels at 112x144, bf16, one thread) took 0.74 ms and its tanh 0.23 more,
    against 0.28 for this 3x3 convolution with the tanh fused and 0.2 for the shuffle.
    """

    def __init__(self, transposed: nn.ConvTranspose2d, activation: nn.Module | None = None):
        super().__init__()
        cin, cout = transposed.in_channels, transposed.out_channels
        conv = nn.Conv2d(cin, 4 * cout, 3, padding=1, bias=transposed.bias is not None)
        conv = conv.to(transposed.weight.device, transposed.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(_phase_kernels(transposed.weight))
            if transposed.bias is not None:
                conv.bias.copy_(transposed.bias.repeat_interleave(4))
        self.conv = conv if activation is None else ConvActivation(conv, activation)

    def forward(self, x):
        return F.pixel_shuffle(self.conv(x), 2)


def _phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """[4 * out, in, 3, 3] kernels of a stride-2, padding-1, 4x4 transposed convolution's weight [in, out, 4, 4].

    Output pixel (2i + r, 2j + s) sums input (i + dy, j + dx) times weight[..., r + 1 - 2dy, s + 1 - 2dx]
    for the dy, dx in -1..1 that keep that tap inside the 4x4 kernel; channel c * 4 + r * 2 + s holds it,
    PixelShuffle's order.
    """
    cin, cout = weight.shape[:2]
    kernels = weight.new_zeros(cout, 2, 2, cin, 3, 3)
    for r in range(2):
        for s in range(2):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ky, kx = r + 1 - 2 * dy, s + 1 - 2 * dx
                    if 0 <= ky < 4 and 0 <= kx < 4:
                        kernels[:, r, s, :, dy + 1, dx + 1] = weight[:, :, ky, kx].t()
    return kernels.reshape(4 * cout, cin, 3, 3)


# Output channels up to which a transposed convolution runs faster as SubPixelConvTranspose: the wider
# decoder layers ran 1.3-1.6x slower that way (their packed transposed form is oneDNN's good path).
SUBPIXEL_CHANNELS = 4


def subpixel_outputs(model: nn.Module) -> int:
    """Replace each ConvTranspose2d(kernel 4, stride 2, padding 1) with at most SUBPIXEL_CHANNELS outputs
    in a Sequential, with the Tanh right after it if there is one, by a SubPixelConvTranspose; in place.
    Returns how many."""
    replaced = 0
    for block in list(model.modules()):
        if not isinstance(block, nn.Sequential):
            continue
        for index, conv in enumerate(block):
            if not (isinstance(conv, nn.ConvTranspose2d) and conv.out_channels <= SUBPIXEL_CHANNELS
                    and conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.padding == (1, 1)
                    and conv.output_padding == (0, 0) and conv.dilation == (1, 1) and conv.groups == 1
                    and conv.padding_mode == "zeros"):
                continue
            activation = block[index + 1] if index + 1 < len(block) and isinstance(block[index + 1], nn.Tanh) else None
            block[index] = SubPixelConvTranspose(conv, activation)
            if activation is not None:
                block[index + 1] = nn.Identity()
            replaced += 1
    return replaced


def fuse_activations(model: nn.Module) -> int:
    """Replace each Conv2d followed (past Identities, such as folded BatchNorms) by a ReLU or ReLU6 in a
    Sequential with a ConvActivation; in place. Returns how many."""
    fused = 0
    for block in list(model.modules()):  # the tree as it was: the fused modules need no visit
        if not isinstance(block, nn.Sequential):
            continue
        for index, conv in enumerate(block):
            if not isinstance(conv, nn.Conv2d) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
                continue
            after = _activation_after(list(block), index)
            if after is not None:
                block[index] = ConvActivation(conv, block[after])
                block[after] = nn.Identity()
                fused += 1
    return fused


def activations_in_place(model: nn.Module) -> None:
    """Let ReLU, LeakyReLU and Hardtanh (ReLU6 among them) overwrite their input: no new tensor per
    activation (inference only)."""
    for module in model.modules():
        if isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh)):
            module.inplace = True


def cast_weights(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Conv and linear weights and biases in `dtype`, once, for a model run under autocast to `dtype`.

    Autocast casts them at every call otherwise (its cache lasts one autocast context); the numbers are
    the same. Other parameters and buffers keep their type, so the ops autocast keeps in fp32 still get fp32.
    None leaves the model as it is.
    """
    if dtype is None:
        return model
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            module.to(dtype)
    return model


class PackedConv(nn.Module):
    """A convolution (plain, transposed, or with its ReLU/ReLU6) whose bf16 weights oneDNN keeps reordered
    into its blocked layout. Unpacked, oneDNN reorders the weights at every call: at batch 1 on the small
    maps of the deep layers that is most of the call (a 3x3 320->256 conv at 7x9: 0.63 -> 0.13 ms packed,
    one thread), with the same numbers out.

    The layout oneDNN picks depends on the input's shape and on the thread count, and weights packed for
    another of either ran up to 10x slower than unpacked ones. So they are packed on first use for each
    (threads, shape), which costs about one unpacked call, and the last PACKED_LAYOUTS of them are kept.
    Inputs other than bf16 on the CPU go through the plain module.
    """

    def __init__(self, conv: nn.Module, algorithm: str, scalars: list, fallback: nn.Module):
        super().__init__()
        self.fallback = fallback  # the same computation without packed weights (other devices, dtypes)
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self.output_padding = list(conv.output_padding) if self.transposed else None
        self.algorithm, self.scalars = algorithm, scalars
        self.weight = conv.weight.detach()
        self.bias = None if conv.bias is None else conv.bias.detach()
        self._layouts = OrderedDict()  # (threads, input shape) -> packed weights, most recent last
        self._lock = threading.Lock()  # batch workers share the module

    def _packed(self, shape):
        key = (torch.get_num_threads(), shape)
        with self._lock:
            packed = self._layouts.get(key)
            if packed is not None:
                self._layouts.move_to_end(key)
                return packed
        padding, stride, dilation, groups = self.geometry
        if self.transposed:
            packed = torch.ops.mkldnn._reorder_convolution_transpose_weight(
                self.weight, padding, self.output_padding, stride, dilation, groups, list(shape))
        else:
            packed = torch.ops.mkldnn._reorder_convolution_weight(self.weight, padding, stride, dilation, groups,
                                                                  list(shape))
        with self._lock:
            self._layouts[key] = packed
            while len(self._layouts) > PACKED_LAYOUTS:
                self._layouts.popitem(last=False)
        return packed

    def forward(self, x):
        if torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.get_autocast_dtype(x.device.type))
        if x.device.type != "cpu" or x.dtype != self.weight.dtype or x.dim() != 4:
            return self.fallback(x)
        packed = self._packed(tuple(x.shape))
        padding, stride, dilation, groups = self.geometry
        if self.transposed:
            return _TRANSPOSED_POINTWISE(x, packed, self.bias, padding, self.output_padding, stride, dilation,
                                         groups, self.algorithm, self.scalars, "")
        return _POINTWISE(x, packed, self.bias, padding, stride, dilation, groups, self.algorithm, self.scalars, "")


def _packable(module, dtype):
    conv = module.conv if isinstance(module, ConvActivation) else module
    if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) or conv.weight.dtype != dtype:
        return False
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros" or conv.weight.device.type != "cpu":
        return False
    return not isinstance(conv, nn.ConvTranspose2d) or _TRANSPOSED_POINTWISE is not None


def _input_shapes(model, example, modules):
    """{module: the shape of its input} in one forward of `example` (modules it does not reach stay out)."""
    shapes = {}

    def record(module, args):
        shapes.setdefault(module, list(args[0].shape))  # and return None: a pre-hook's result replaces the input

    hooks = [m.register_forward_pre_hook(record) for m in modules]
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def _packed_module(module, activation=None):
    conv = module.conv if isinstance(module, ConvActivation) else module
    algorithm, scalars = ("none", [])
    if isinstance(module, ConvActivation):
        algorithm, scalars = module.algorithm, module.scalars
    elif activation is not None:
        algorithm, scalars = _onednn_activation(activation)
    fallback = module if activation is None else nn.Sequential(module, activation)
    return PackedConv(conv, algorithm, scalars, fallback)


def pack_weights(model: nn.Module, example: torch.Tensor) -> int:
    """Let oneDNN keep the bf16 weights of the transposed convolutions and of those on maps at stride 16
    or more in its own layout (PackedConv); transposed convolutions take the ReLU/ReLU6 after them along.
    `example` ([1, C, H, W] at the working size) tells which maps are at stride 16. In place, after
    cast_weights to bf16, CPU only (elsewhere a no-op). Returns how many convolutions were packed.

    There the weights outweigh the map and packing paid 1.3-2.7x on every one, while on larger maps some
    packed 1x1 convolutions ran 10x slower (pretrained gan at 224x288, one thread: its network 16.4 -> 12.9 ms).
    """
    if _POINTWISE is None or example.device.type != "cpu":
        return 0
    candidates = [m for m in model.modules() if _packable(m, torch.bfloat16)]
    deep = example.shape[-2] * example.shape[-1] / 16**2
    chosen = {m for m, shape in _input_shapes(model, example, candidates).items()
              if isinstance(m, nn.ConvTranspose2d) or shape[-2] * shape[-1] <= deep}
    packed = 0
    for parent in list(model.modules()):
        if isinstance(parent, (ConvActivation, PackedConv)):
            continue
        children = list(parent.named_children())
        for position, (name, child) in enumerate(children):
            if child not in chosen:
                continue
            activation = None
            if isinstance(parent, nn.Sequential) and isinstance(child, nn.ConvTranspose2d):
                after = _activation_after([module for _, module in children], position)
                if after is not None:
                    activation = children[after][1]
                    setattr(parent, children[after][0], nn.Identity())
            setattr(parent, name, _packed_module(child, activation))
            packed += 1
    return packed


def tune_for_inference(model: nn.Module) -> nn.Module:
    """Fold BatchNorm and padding, the output layer's transposed convolution as a sub-pixel one
    (SubPixelConvTranspose), fuse ReLU/ReLU6 into the convolutions, other activations in place,
    channels-last (oneDNN's and cuDNN's preferred layout); in place. The model must not be trained afterwards."""
    model.eval()
    fold_batchnorm(model)
    fold_padding(model)
    subpixel_outputs(model)
    fuse_activations(model)
    activations_in_place(model)
    return model.to(memory_format=torch.channels_last)


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs natively here: AVX-512 BF16 or AMX on CPU, Ampere or later on CUDA."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --precision on `device` (None: plain fp32)."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return None
    if native_bf16(device):
        return torch.bfloat16
    if precision == "bf16":
        raise PrecisionError(f"--precision bf16: {device.type} here has no native bf16 (use auto or fp32)")
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """The autocast context for `dtype`, or a no-op for fp32."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
