"""Choose the step and chroma gain to ship from a run's kept weights (`colorize train --keep-every`).

    python scripts/choose_step.py runs/gan-1 data/photos-train-val --from-step 6000 --gains 0.9,1,1.1,1.2
    python scripts/choose_step.py runs/gan-class data/photos-train-val --gains 1 --blends 0,0.25,0.5

The 64 validation crops a run scores as it trains are too few to choose a step by: this scores every
kept step (from --from-step on) on a larger held-out folder at gain 1, then the --top best of them by
raw AuC at each gain (and, for a gan with a class head, each --blends share of the head's colour at
--temperature), and applies the rule of issue 14: the best raw AuC among the rows that reach
--min-colourfulness of the truth's colourfulness with a chroma ratio of at most --max-chroma-ratio.
Rows within --tie of that AuC count as equal (steps of one run differ by a few hundredths on 450 photos,
which is noise, and taking the maximum of noise favours chance): of those, the latest step, at the gain
nearest 1 and the smallest blend.
Export the choice with `colorize train export RUN --checkpoint STEP --config chroma_gain=GAIN` (and
`--config class_blend=BLEND --config class_temperature=T`).
The held-out folder must not be a folder the README's quality table is measured on.
"""

import argparse
import json
from pathlib import Path

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.evaluate.report import evaluate_folder
from colorize_cli.train.run_folder import RunFolder


def _colorizer(path, gain, blend, temperature, device):
    colorizer = Colorizer.from_checkpoint(path, device)
    config = colorizer.model.config  # read by predict_ab at every call
    config.chroma_gain = gain
    if blend:
        config.class_blend = blend
        config.class_temperature = temperature or config.class_temperature
    return colorizer


def _name(step, gain, blend):
    return f"step {step} gain {gain:g} blend {blend:g}"


def _scores(folder, candidates, device, crop, temperature=None):
    """{(step, gain, blend): method summary} for every candidate on the photos of `folder`."""
    colorizers = {_name(step, gain, blend): _colorizer(path, gain, blend, temperature, device)
                  for step, gain, blend, path in candidates}
    report = evaluate_folder(folder, colorizers, crop=crop, examples=0)
    rows = {method.name: method for method in report.methods}
    scores = {(step, gain, blend): rows[_name(step, gain, blend)] for step, gain, blend, _ in candidates}
    return scores, report.truth_colourfulness, rows["gray"]


def _table(scores, truth):
    lines = ["| step | gain | blend | AuC | rebalanced AuC | PSNR | colourfulness (% of truth) | chroma ratio |",
             "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for (step, gain, blend), m in sorted(scores.items()):
        lines.append(f"| {step} | {gain:g} | {blend:g} | {m.auc:.2f} | {m.auc_rebalanced:.2f} | {m.psnr:.2f} | "
                     f"{m.colourfulness:.2f} ({100 * m.colourfulness / truth:.0f} %) | {m.chroma_ratio:.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("held_out", type=Path)
    parser.add_argument("--from-step", type=int, default=0)
    parser.add_argument("--gains", default="0.9,1,1.1,1.2")
    parser.add_argument("--blends", default="0", help="class_blend values (a gan with a class head).")
    parser.add_argument("--temperature", type=float, help="class_temperature with --blends (default: the model's).")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--min-colourfulness", type=float, default=0.6)
    parser.add_argument("--max-chroma-ratio", type=float, default=1.2)
    parser.add_argument("--tie", type=float, default=0.05, help="AuC points within which rows count as equal.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="Also write every score here.")
    args = parser.parse_args()

    folder = RunFolder(args.run)
    steps = [step for step in folder.kept_steps() if step >= args.from_step]
    if not steps:
        raise SystemExit(f"{args.run}: no kept weights from step {args.from_step} on (train with --keep-every)")
    at_one, truth, gray = _scores(args.held_out, [(s, 1.0, 0.0, folder.history_weights(s)) for s in steps],
                                  args.device, args.crop)
    print(f"gray: AuC {gray.auc:.2f}, rebalanced {gray.auc_rebalanced:.2f}, PSNR {gray.psnr:.2f}; "
          f"truth colourfulness {truth:.2f}\n\n{_table(at_one, truth)}\n", flush=True)

    best_steps = sorted(steps, key=lambda s: at_one[(s, 1.0, 0.0)].auc, reverse=True)[: args.top]
    gains = [float(g) for g in args.gains.split(",")]
    blends = [float(b) for b in args.blends.split(",")]
    more = [(s, g, b, folder.history_weights(s)) for s in best_steps for g in gains for b in blends
            if (g, b) != (1.0, 0.0)]
    scores = dict(at_one)
    if more:
        scores.update(_scores(args.held_out, more, args.device, args.crop, args.temperature)[0])
        print(_table({k: v for k, v in scores.items() if k[0] in best_steps}, truth) + "\n")

    allowed = {key: m for key, m in scores.items()
               if m.colourfulness >= args.min_colourfulness * truth and m.chroma_ratio <= args.max_chroma_ratio}
    pool = allowed or scores
    best_auc = max(m.auc for m in pool.values())
    tied = [(key, m) for key, m in pool.items() if m.auc >= best_auc - args.tie]
    (step, gain, blend), chosen = max(tied, key=lambda item: (item[0][0], -abs(item[0][1] - 1.0), -item[0][2]))
    print(f"chosen: step {step}, gain {gain:g}, blend {blend:g} (AuC {chosen.auc:.2f}; {len(tied)} row(s) within {args.tie:g} of the "
          f"best AuC {best_auc:.2f}; colourfulness "
          f"{100 * chosen.colourfulness / truth:.0f} % of the truth's, chroma ratio {chosen.chroma_ratio:.3f})"
          + ("" if allowed else "; no row met the colourfulness and chroma bars, so the best AuC of all"))
    decoding = f" --config class_blend={blend:g}" if blend else ""
    if blend and args.temperature:
        decoding += f" --config class_temperature={args.temperature:g}"
    print(f"export: colorize train export {args.run} --checkpoint {step} --config chroma_gain={gain:g}{decoding} --out ...")
    if args.json:
        args.json.write_text(json.dumps(
            {"truth_colourfulness": truth, "gray": vars(gray), "chosen": {"step": step, "gain": gain, "blend": blend},
             "scores": [{"step": s, "gain": g, "blend": b, **vars(m)} for (s, g, b), m in sorted(scores.items())]},
            indent=2))


if __name__ == "__main__":
    main()
