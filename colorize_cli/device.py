"""Device selection: one place that turns a user's --device into a torch.device."""

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device the user asked for is not available."""


def resolve_device(spec: str = "auto") -> torch.device:
    """Return the torch.device for "auto", "cpu", "cuda" or "cuda:N"; auto prefers CUDA."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec}: CUDA is not available on this machine (use cpu or auto)")
        device = torch.device(spec)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise DeviceError(f"--device {spec}: expected one of auto, cpu, cuda, cuda:N")
