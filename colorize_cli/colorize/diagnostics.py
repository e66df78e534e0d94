"""Per-image diagnostics: a panel (input L, predicted a, predicted b, result) and a JSON sidecar."""

import json

import numpy as np
import torch
import torch.nn.functional as F

from colorize_cli.colour.lab import lab_to_rgb
from colorize_cli.colour.metrics import colourfulness
from colorize_cli.photos.fsutil import atomic_write
from colorize_cli.photos.io import write_image

PANEL_HEIGHT = 256
# Lightness used to show a single chroma channel as a colour map.
CHANNEL_VIEW_L = 70.0


def diagnostics_paths(output):
    """(panel PNG, JSON sidecar) written next to an output file, named after its whole name: a.png's and
    a.jpg's must not overwrite each other."""
    return output.with_name(output.name + ".diagnostics.png"), output.with_name(output.name + ".diagnostics.json")


def _panel_tiles(L, low, rgb):
    height, width = L.shape
    size = (PANEL_HEIGHT, max(1, round(width * PANEL_HEIGHT / height)))
    L_small = F.interpolate(torch.from_numpy(L)[None, None], size=size, mode="area")[0]
    ab_small = F.interpolate(low.ab.float().cpu(), size=size, mode="bilinear", align_corners=False)[0]
    gray = (L_small / 100.0).expand(3, -1, -1)
    view = torch.full_like(L_small, CHANNEL_VIEW_L)
    zero = torch.zeros_like(L_small)
    a_view = lab_to_rgb(torch.cat([view, ab_small[:1], zero]))
    b_view = lab_to_rgb(torch.cat([view, zero, ab_small[1:]]))
    result = torch.from_numpy(rgb.astype(np.float32) / np.iinfo(rgb.dtype).max).permute(2, 0, 1)
    result = F.interpolate(result[None], size=size, mode="area")[0]
    return [gray, a_view, b_view, result], ab_small


def write_diagnostics(output, L, low, rgb, colorizer, timings):
    """Write the panel and the sidecar for one colorized image."""
    panel_path, sidecar_path = diagnostics_paths(output)
    tiles, ab_small = _panel_tiles(L, low, rgb)
    panel = torch.cat(tiles, dim=2).permute(1, 2, 0).clamp(0, 1)
    panel_rgb = (panel.numpy() * 255).round().astype(np.uint8)
    write_image(panel_path, panel_rgb)
    saturation = colorizer.saturation
    sidecar = {
        "model": colorizer.header.get("model", colorizer.model.name),
        "checkpoint_sha256": colorizer.checkpoint_sha256,
        "render_size": colorizer.render_size,
        "working_size": list(low.ab.shape[-2:]),
        "saturation": saturation,
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "mean_chroma": float(torch.linalg.vector_norm(ab_small * saturation, dim=0).mean()),
        "colourfulness": float(colourfulness(tiles[3].permute(1, 2, 0).numpy())),
        "panel": ["input L", "predicted a", "predicted b", "result"],
    }
    with atomic_write(sidecar_path) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=2) + "\n")
