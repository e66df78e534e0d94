"""Score weights on photos whose input lightness looks like an old print's (soft, grainy, faded).

    python scripts/aged_probe.py data/photos-train-val gan cnn          # each at its own chroma gain
    python scripts/aged_probe.py data/photos-train-val runs/gan-aged/history/step_0003000.safetensors \
        --gains 1,1.05 --inputs clean,aged

The archivist's scans are soft, grainy and faded, and the truth of such photos has no colour to score,
so this ages the L of colour photos at fixed strengths (the effects of `train/aged_print.py`), lets each
model colour the aged L, recombines its ab with the photo's own L and scores that against the photo, as
`colorize evaluate` does (same crop, AuC, rebalanced AuC, colourfulness). Grain is drawn from a fixed
seed per batch, so reruns give the same figures.
"""

import argparse
from pathlib import Path

import torch

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.evaluate.report import evaluate_folder
from colorize_cli.train.aged_print import fade, gaussian_blur

BLUR_SIGMA = 1.5  # px at the scored crop's scale
GRAIN_SIGMA = 4.0  # L units
FADE = (12.0, 90.0, 1.0)  # black, white, gamma: L' = 12 + 0.78 L, lifted blacks and dimmed whites
GRAIN_SEED = 0


def _blur(L):
    return torch.stack([gaussian_blur(one, BLUR_SIGMA) for one in L])


def _grain(L):
    generator = torch.Generator().manual_seed(GRAIN_SEED)
    return L + GRAIN_SIGMA * torch.randn(L.shape, generator=generator, dtype=L.dtype)


def _fade(L):
    return fade(L, *FADE)


def _aged(L):
    return _grain(_fade(_blur(L)))


AGEINGS = {"clean": lambda L: L, "blur": _blur, "grain": _grain, "fade": _fade, "aged": _aged}


class AgedInput:
    """A Colorizer that sees the aged L of what it is asked to colour; everything else is the wrapped one's."""

    def __init__(self, colorizer, ageing):
        self._colorizer, self._ageing = colorizer, ageing

    def __getattr__(self, name):
        return getattr(self._colorizer, name)

    def predict_ab(self, L):
        return self._colorizer.predict_ab(self._ageing(L.float()).clamp(0, 100))


def aged_colorizer(model, gain, input_name, device="cpu"):
    """The model (a shipped name or weights file) fed the `input_name` ageing of L, decoding at chroma `gain`
    (None: the model's own)."""
    colorizer = Colorizer.from_checkpoint(model, device)
    config = colorizer.model.config
    if gain is not None:
        if not hasattr(config, "chroma_gain"):
            raise SystemExit(f"{model}: a {colorizer.model.name} model has no chroma_gain to set")
        config.chroma_gain = gain  # read by predict_ab at every call
    return AgedInput(colorizer, AGEINGS[input_name])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("models", nargs="+", help="shipped names or weights files")
    parser.add_argument("--gains", help="chroma_gain values to score each model at [default: its own]")
    parser.add_argument("--inputs", default=",".join(AGEINGS), help=f"of {', '.join(AGEINGS)}")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    gains = [float(g) for g in args.gains.split(",")] if args.gains else [None]

    print("| input L | model | gain | AuC | rebalanced AuC | PSNR | colourfulness (% of truth) | chroma ratio |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for input_name in args.inputs.split(","):
        colorizers = {}
        for model in args.models:
            for gain in gains:
                colorizer = aged_colorizer(model, gain, input_name, args.device)
                own = getattr(colorizer.model.config, "chroma_gain", 1.0)
                colorizers[f"{model}@{own:g}"] = colorizer
        report = evaluate_folder(args.photos, colorizers, crop=args.crop, examples=0)
        truth = report.truth_colourfulness
        for m in report.methods:
            if m.name == "gray":
                continue
            model, _, gain = m.name.rpartition("@")
            print(f"| {input_name} | {model} | {gain} | {m.auc:.2f} | {m.auc_rebalanced:.2f} | {m.psnr:.2f} | "
                  f"{m.colourfulness:.2f} ({100 * m.colourfulness / truth:.0f} %) | {m.chroma_ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
