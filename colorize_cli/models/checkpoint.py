"""The one checkpoint format: safetensors tensors plus a JSON header that rebuilds the model.

safetensors holds raw tensors only, so loading a file never runs code from it (unlike a pickle).
"""

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from colorize_cli import __version__
from colorize_cli.colour.lab import AB_SCALE
from colorize_cli.models import MODEL_NAMES, build_model
from colorize_cli.photos.fsutil import atomic_write

FORMAT = "colorize-checkpoint/1"
HEADER_KEY = "colorize"
CHECKSUMS_FILE = "SHA256SUMS"


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message is one line naming the file and the cause."""


def save_checkpoint(path, model, *, training=None, metrics=None, dtype=None):
    """Write `model` with its header to `path` atomically; `dtype` (e.g. torch.float16) shrinks floats."""
    header = {
        "format": FORMAT,
        "model": model.name,
        "config": asdict(model.config),
        "ab_scale": AB_SCALE,
        "training": training or {},
        "metrics": metrics or {},
        "version": __version__,
    }
    tensors = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[key] = tensor.contiguous()
    # safetensors' own save_file recreates the file owner-only (0600); writing its bytes keeps the umask's mode.
    data = save(tensors, metadata={HEADER_KEY: json.dumps(header, sort_keys=True)})
    with atomic_write(path) as tmp_path:
        _write_bytes(data, tmp_path)
    return header


def _write_bytes(data, path):
    Path(path).write_bytes(data)


def read_header(path):
    """Return the JSON header of a checkpoint without loading its tensors."""
    path = Path(path)
    with _open(path) as handle:
        return _parse_header(path, handle.metadata())


# Config keys that came with the pretrained encoder, and the values that rebuild checkpoints written
# before them (whose configs lack the keys, while the defaults are now the pretrained architectures).
_BEFORE_PRETRAINED = {"gan": {"encoder": "scratch"}, "autoencoder": {"global_branch": "joint"}}


def header_config(header):
    """The model config a checkpoint header describes, completed for files older than the pretrained encoder."""
    return {**_BEFORE_PRETRAINED.get(header["model"], {}), **header["config"]}


def load_checkpoint(path, device="cpu"):
    """Rebuild the model stored at `path` on `device` (eval mode) and return (model, header)."""
    path = Path(path)
    verify_checksum(path)
    with _open(path) as handle:
        header = _parse_header(path, handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    try:
        model = build_model(header["model"], header_config(header))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its header does not describe a valid model ({err})") from None
    if header["model"] == "gan" and not any(key.startswith("unet.") for key in tensors):
        tensors = {f"unet.{key}": tensor for key, tensor in tensors.items()}  # before the U-Net had its module
    _check_shapes(path, model, tensors)
    state = {key: tensor.to(model.state_dict()[key].dtype) for key, tensor in tensors.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), header


def file_sha256(path):
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path):
    """Check `path` against a SHA256SUMS file beside it, when that file lists it."""
    path = Path(path)
    sums_file = path.parent / CHECKSUMS_FILE
    if not sums_file.is_file():
        return
    for line in sums_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            if file_sha256(path) != parts[0].lower():
                raise CheckpointError(f"{path}: SHA-256 does not match {sums_file}; the file was changed or damaged")
            return


def record_checksum(path):
    """Add or replace `path`'s line in the SHA256SUMS beside it (what verify_checksum checks)."""
    path = Path(path)
    sums_file = path.parent / CHECKSUMS_FILE
    lines = sums_file.read_text().splitlines() if sums_file.is_file() else []
    kept = [line for line in lines if line.split()[-1:] != [path.name]]
    entries = sorted([*kept, f"{file_sha256(path)}  {path.name}"], key=lambda line: line.split()[-1])
    with atomic_write(sums_file) as tmp:
        tmp.write_text("\n".join(entries) + "\n")


def _open(path):
    if path.is_dir():  # most often a training run: its weights are files inside it
        found = sorted(path.glob("*.safetensors"))
        hint = f", e.g. {found[0]}" if found else ""
        raise CheckpointError(f"{path}: a folder, not a checkpoint file; name a .safetensors file in it{hint}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({_describe(path, err)})") from None


def _describe(path, err):
    with open(path, "rb") as handle:
        start = handle.read(2)
    # Pickles (and torch.save zips, which hold pickles) are refused outright: unpickling runs code.
    if start[:1] == b"\x80" or start == b"PK":
        return "it is a pickle or torch.save file, which colorize never unpickles"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _parse_header(path, metadata):
    try:
        header = json.loads((metadata or {})[HEADER_KEY])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: safetensors file without a colorize header") from None
    if not isinstance(header, dict) or not isinstance(header.get("config"), dict):
        raise CheckpointError(f"{path}: its colorize header is not an object with a model config")
    bad = next((key for key, value in header["config"].items()
                if isinstance(value, float) and not math.isfinite(value)), None)
    if bad is not None:  # NaN passes every `<= 0` check and would colour every photo NaN
        raise CheckpointError(f"{path}: its model config holds {header['config'][bad]} for {bad!r}")
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {header.get('format')!r}")
    if header.get("model") not in MODEL_NAMES:
        raise CheckpointError(
            f"{path}: unknown model {header.get('model')!r} (known: {', '.join(MODEL_NAMES)})"
        )
    if header.get("ab_scale") != AB_SCALE:
        raise CheckpointError(f"{path}: trained with ab scale {header.get('ab_scale')}, this version uses {AB_SCALE}")
    return header


def _check_shapes(path, model, tensors):
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        key = (missing or unexpected)[0]
        kind = "missing" if missing else "unexpected"
        raise CheckpointError(f"{path}: tensor {key!r} is {kind} for model {model.name!r}")
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{path}: tensor {key!r} has shape {tuple(tensor.shape)}, "
                f"model {model.name!r} expects {tuple(expected[key].shape)}"
            )
        if tensor.dtype.is_floating_point != expected[key].dtype.is_floating_point:  # fp16 for fp32 is fine
            raise CheckpointError(f"{path}: tensor {key!r} is {tensor.dtype}, model {model.name!r} expects "
                                  f"{expected[key].dtype}")
