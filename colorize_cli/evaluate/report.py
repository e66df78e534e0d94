"""Evaluate colorizers against colour photographs: the metrics of the papers, per image and per method.

Every method (the gray baseline, our models, other tools' outputs) is scored the same way: as the 8-bit
sRGB image a user would get, compared with the photo it was made from.
"""

import glob
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.colour import metrics
from colorize_cli.colour.ab_bins import bin_centers
from colorize_cli.colour.lab import lab_to_rgb, rgb_to_lab
from colorize_cli.evaluate.plots import image_grid, line_plot
from colorize_cli.photos.discovery import is_image_name, walk_images
from colorize_cli.photos.fsutil import atomic_write
from colorize_cli.photos.io import ImageReadError, read_image

GRAY = "gray"
# Side of the stored contact-sheet thumbnails: bounds memory when full-size photos are evaluated.
THUMBNAIL_SIDE = 320
# Long side / short side kept around the centre square before a --crop resize (photos up to 4:1 are untouched).
CROP_BAND = 4
# A photo whose pixels are 99 % below chroma 1 is a gray image (often stored as RGB): it has no colour
# to score, and the papers' test sets (e.g. ctest10k) exclude such images.
COLOURLESS_PERCENTILE = 99
COLOURLESS_CHROMA = 1.0
REPORT_FILES = ("report.json", "report.md", "error_curves.png", "contact_sheet.png")


@dataclass
class Problem:
    """An input that could not be scored: `method` is None when the photo itself is unusable. A colourless
    photo is `excluded` (nothing to compare colour with); the rest failed (unreadable, missing, mismatched)."""

    path: str
    method: str | None
    reason: str
    excluded: bool = False


@dataclass
class MethodSummary:
    """One row of the table: a method's mean metrics over the photos it was scored on."""

    name: str
    kind: str  # "baseline", "model" or "predictions"
    source: str
    images: int
    psnr: float
    ssim: float
    auc: float
    auc_rebalanced: float
    colourfulness: float
    delta_colourfulness: float
    chroma_ratio: float


@dataclass
class Example:
    """A contact-sheet row: the truth and every method's output (uint8 thumbnails; None where missing)."""

    path: str
    auc: float
    images: list


@dataclass
class Report:
    """Everything `evaluate` measured; `to_dict` is report.json."""

    folder: str
    crop: int | None
    found: int
    evaluated: int
    truth_colourfulness: float
    methods: list[MethodSummary]
    curves: dict
    images: list[dict]
    problems: list[Problem]
    ranked_by: str
    examples: list[Example] = field(default_factory=list, repr=False)

    def protocol(self):
        """One sentence a reader needs to compare these numbers with a paper's."""
        if self.crop:
            size = (
                f"each photo's short side resized to {self.crop} px and the centre {self.crop}x{self.crop} crop "
                "taken (the protocol of Zhang et al. 2016)"
            )
        else:
            size = "each photo at its full size"
        return (
            f"{size}; every method sees only the L channel and is scored on the 8-bit sRGB image it produces; "
            "AuC: cumulative per-pixel ab error curve at thresholds 0-150, pooled over all pixels; "
            "rebalanced AuC weighs pixels by the inverse frequency of their true colour's 313-bin class "
            "in this set; PSNR on 8-bit RGB and SSIM (scikit-image, 7x7 window) averaged per photo; "
            "|dCF| is |mean colourfulness - mean colourfulness of the truth| (Hasler and Suesstrunk 2003); "
            "chroma ratio is mean predicted chroma over mean true chroma; photos without colour (99 % of pixels "
            "below chroma 1) are skipped and listed, as the papers' test sets exclude grayscale images."
        )

    def to_dict(self):
        """The JSON-able report (non-finite numbers become the strings 'inf' and 'nan')."""
        data = {
            "folder": self.folder,
            "protocol": {"crop": self.crop, "description": self.protocol()},
            "counts": {"found": self.found, "evaluated": self.evaluated, "problems": len(self.problems)},
            "truth_colourfulness": self.truth_colourfulness,
            "methods": [asdict(method) for method in self.methods],
            "curves": self.curves,
            "contact_sheet_ranked_by": self.ranked_by,
            "problems": [asdict(problem) for problem in self.problems],
            "images": self.images,
        }
        return _json_safe(data)


@dataclass
class _Truth:
    path: str
    size: tuple  # (height, width) of the photo before cropping
    rgb: np.ndarray
    L: np.ndarray
    ab: np.ndarray
    classes: np.ndarray
    colourfulness: float
    chroma: float


@dataclass
class _Tally:
    """Per-photo scores of one method and its ab errors by true colour class and error step."""

    kind: str
    source: str
    histogram: np.ndarray
    scores: dict = field(default_factory=dict)


def crop_photo(rgb, crop):
    """Resize the short side to `crop` px and cut the centre square; `crop` None keeps the photo as is."""
    if not crop:
        return rgb
    height, width = rgb.shape[:2]
    # Only the centre square is kept: a strip longer than CROP_BAND is cut to it first, or a 1 x 100,000 px
    # strip would be resized to 256 x 25,600,000 px (79 GB as float RGB) on the way to a 256 px square.
    band = CROP_BAND * min(height, width)
    top, left = max(0, (height - band) // 2), max(0, (width - band) // 2)
    rgb = rgb[top : top + band, left : left + band]
    height, width = rgb.shape[:2]
    scale = crop / min(height, width)
    if scale != 1.0:
        size = (max(crop, round(height * scale)), max(crop, round(width * scale)))
        tensor = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
        tensor = F.interpolate(tensor, size=size, mode="bicubic", antialias=True, align_corners=False)
        rgb = tensor[0].permute(1, 2, 0).clamp_(0.0, 1.0).numpy()
        height, width = size
    top, left = (height - crop) // 2, (width - crop) // 2
    return rgb[top : top + crop, left : left + crop]


def method_names(specs):
    """Table names for model specs and prediction folders: the file or folder name, the full spec on a clash."""
    short = [Path(str(spec).rstrip("/\\")).stem or str(spec) for spec in specs]
    return [name if short.count(name) == 1 and name != GRAY else str(spec) for name, spec in zip(short, specs)]


def resolve_methods(model_specs=(), prediction_dirs=(), device="cpu", render_size=None, saturation=1.0,
                    precision="auto"):
    """(colorizers, predictions) keyed by table name, for --model values (shipped names or checkpoint paths)
    and --predictions folders; a spec given twice counts once."""
    model_specs, prediction_dirs = list(dict.fromkeys(model_specs)), list(dict.fromkeys(prediction_dirs))
    names = method_names([*model_specs, *prediction_dirs])
    colorizers = {
        name: Colorizer.from_checkpoint(spec, device, render_size, saturation, precision)
        for name, spec in zip(names, model_specs)
    }
    return colorizers, dict(zip(names[len(model_specs) :], map(Path, prediction_dirs)))


def evaluate_folder(
    folder, colorizers=None, predictions=None, *, crop=256, limit=None, examples=4, batch_size=16, progress=None
):
    """Score the gray baseline, each colorizer and each predictions folder on the colour photos under `folder`.

    `colorizers` maps table names to Colorizers; `predictions` maps names to folders of other tools'
    outputs, matched by path relative to `folder`. `progress(done, total)` is called after each batch.
    """
    folder = Path(folder)
    colorizers, predictions = dict(colorizers or {}), dict(predictions or {})
    unlisted = []
    paths = walk_images(folder, unlisted)[:limit]
    num_classes = len(bin_centers())
    sources = {GRAY: ("baseline", "ab = 0")}
    sources.update((name, ("model", _colorizer_source(c))) for name, c in colorizers.items())
    sources.update((name, ("predictions", str(path))) for name, path in predictions.items())
    tallies = {
        name: _Tally(kind, source, np.zeros((num_classes, metrics.HISTOGRAM_STEPS)))
        for name, (kind, source) in sources.items()
    }
    # The contact sheet ranks photos by the first model's error (the gray baseline when there is none).
    ranked_by = [*colorizers, *predictions, GRAY][0]
    extremes = _Extremes(examples, list(tallies))
    class_counts = np.zeros(num_classes)
    truths = {}
    problems = [_unlisted_problem(err, folder) for err in unlisted]

    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start : start + batch_size]:
            relative = path.relative_to(folder).as_posix()
            try:
                batch.append(_load_truth(path, relative, crop))
            except _Unusable as err:
                problems.append(Problem(relative, None, str(err), err.excluded))
        outputs = _model_outputs(batch, colorizers)
        for truth in batch:
            class_counts += np.bincount(truth.classes.ravel(), minlength=num_classes)
            truths[truth.path] = {"colourfulness": truth.colourfulness, "chroma": truth.chroma}
            images = {GRAY: _gray(truth), **{name: outputs[name][truth.path] for name in colorizers}}
            images.update(_predictions_for(truth, predictions, crop, problems))
            for name, image in images.items():
                tallies[name].scores[truth.path] = _score(image, truth, tallies[name].histogram)
            if ranked_by in images:
                extremes.offer(tallies[ranked_by].scores[truth.path]["auc"], truth, images)
        if progress:
            progress(min(start + batch_size, len(paths)), len(paths))

    class_weights = metrics.inverse_frequency_weights(class_counts)
    return Report(
        folder=str(folder),
        crop=crop or None,
        found=len(paths),
        evaluated=len(truths),
        truth_colourfulness=_mean(t["colourfulness"] for t in truths.values()),
        methods=[_summary(name, tally, truths, class_weights) for name, tally in tallies.items()],
        curves=_curves(tallies, class_weights),
        images=[_photo_record(path, truth, tallies) for path, truth in truths.items()],
        problems=problems,
        ranked_by=ranked_by,
        examples=extremes.rows(),
    )


class _Unusable(Exception):
    """A photo or prediction that cannot be scored; the message says why in one line."""

    def __init__(self, reason, excluded=False):
        super().__init__(reason)
        self.excluded = excluded


def _unlisted_problem(err, folder):
    relative = Path(err.filename).relative_to(folder).as_posix()
    return Problem(relative, None, f"cannot list this folder ({err.strerror or err})")


def _colorizer_source(colorizer):
    where = getattr(colorizer, "checkpoint_path", None) or colorizer.header.get("model", colorizer.model.name)
    return f"{where} (render size {colorizer.render_size}, saturation {colorizer.saturation:g})"


def _read_rgb(path):
    """An image file's pixels as (H,W,3) float in [0,1] (gray repeated); an unreadable file is _Unusable."""
    try:
        pixels = read_image(path).pixels
    except ImageReadError as err:
        raise _Unusable(err.cause) from None
    return np.repeat(pixels[..., None], 3, axis=-1) if pixels.ndim == 2 else pixels


def _load_truth(path, relative, crop):
    pixels = _read_rgb(path)
    # The crop is scored as the 8-bit image it would be if saved, like every output.
    rgb = _to_8bit(crop_photo(pixels, crop)).astype(np.float32) / 255.0
    lab = _lab(rgb)
    ab = lab[..., 1:]
    if np.percentile(np.hypot(ab[..., 0], ab[..., 1]), COLOURLESS_PERCENTILE) < COLOURLESS_CHROMA:
        raise _Unusable("a grayscale photo, no colour to compare against", excluded=True)
    return _Truth(
        path=relative,
        size=pixels.shape[:2],
        rgb=rgb,
        L=lab[..., 0],
        ab=ab,
        classes=metrics.colour_classes(ab),
        colourfulness=metrics.colourfulness(rgb),
        chroma=metrics.mean_chroma(ab),
    )


def _lab(rgb):
    """Lab (H,W,3) of an sRGB (H,W,3) array, through the project's one colour core."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)
    return rgb_to_lab(tensor).permute(1, 2, 0).numpy()


def _to_8bit(rgb):
    """sRGB float in [0,1] (numpy) -> uint8: what a saved image holds."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _batch_to_8bit(rgb):
    """sRGB batch [B,3,H,W] float tensor -> list of uint8 (H,W,3)."""
    return list(_to_8bit(rgb.permute(0, 2, 3, 1).cpu().numpy()))


def _gray(truth):
    L = torch.from_numpy(np.ascontiguousarray(truth.L))[None, None]
    return _batch_to_8bit(lab_to_rgb(torch.cat([L, torch.zeros_like(L).expand(1, 2, -1, -1)], dim=1)))[0]


def _model_outputs(truths, colorizers):
    """{name: {path: uint8 rgb}}, running each model on stacks of equally sized photos."""
    groups = {}
    for truth in truths:
        groups.setdefault(truth.L.shape, []).append(truth)
    outputs = {name: {} for name in colorizers}
    for group in groups.values():
        L = torch.from_numpy(np.stack([truth.L for truth in group]))[:, None]
        for name, colorizer in colorizers.items():
            ab = colorizer.predict_ab(L).float().cpu()
            for truth, image in zip(group, _batch_to_8bit(lab_to_rgb(torch.cat([L, ab], dim=1)))):
                outputs[name][truth.path] = image
    return outputs


def _prediction_file(pred_dir, relative):
    """The file for `relative` in `pred_dir`: the same name, else the same stem with any image suffix."""
    same = pred_dir / relative
    if same.is_file():
        return same
    others = sorted(same.parent.glob(glob.escape(same.stem) + ".*")) if same.parent.is_dir() else []
    return next((path for path in others if is_image_name(path) and path.is_file()), None)


def _load_prediction(pred_dir, truth, crop):
    """Another tool's output for `truth`, cropped like the truth, as uint8 (H,W,3)."""
    found = _prediction_file(pred_dir, truth.path)
    if found is None:
        raise _Unusable(f"no prediction for it in {pred_dir}")
    try:
        pixels = _read_rgb(found)
    except _Unusable as err:
        raise _Unusable(f"{found}: {err}") from None
    if pixels.shape[:2] != truth.size:
        raise _Unusable(
            f"{found}: prediction is {pixels.shape[1]}x{pixels.shape[0]}, the photo is {truth.size[1]}x{truth.size[0]}"
        )
    return _to_8bit(crop_photo(pixels, crop))


def _predictions_for(truth, predictions, crop, problems):
    """{name: uint8 rgb} of the prediction folders that have a usable output for `truth`; the rest go to `problems`."""
    found = {}
    for name, pred_dir in predictions.items():
        try:
            found[name] = _load_prediction(Path(pred_dir), truth, crop)
        except _Unusable as err:
            problems.append(Problem(truth.path, name, str(err)))
    return found


def _score(image, truth, histogram):
    """Per-photo metrics of one output; adds its ab errors by true colour class to `histogram`."""
    rgb = image.astype(np.float32) / 255.0
    ab = _lab(rgb)[..., 1:]
    photo = metrics.error_histogram(ab, truth.ab, truth.classes, len(histogram))
    histogram += photo
    return {
        "psnr": metrics.psnr(rgb, truth.rgb),
        "ssim": metrics.ssim(rgb, truth.rgb),
        "auc": metrics.curve_auc(metrics.curve_from_histogram(photo)),
        "colourfulness": metrics.colourfulness(rgb),
        "chroma": metrics.mean_chroma(ab),
        "chroma_ratio": metrics.chroma_ratio(ab, truth.ab),
    }


def _mean(values):
    """Mean of the defined values: a metric a photo has none of (SSIM under 3 px) leaves it out of that mean."""
    values = [value for value in values if not np.isnan(value)]
    return float(np.mean(values)) if values else float("nan")


def _summary(name, tally, truths, class_weights):
    scores = list(tally.scores.values())
    colourfulness = _mean(score["colourfulness"] for score in scores)
    return MethodSummary(
        name=name,
        kind=tally.kind,
        source=tally.source,
        images=len(scores),
        psnr=_mean(score["psnr"] for score in scores),
        ssim=_mean(score["ssim"] for score in scores),
        auc=metrics.curve_auc(metrics.curve_from_histogram(tally.histogram)),
        auc_rebalanced=metrics.curve_auc(metrics.curve_from_histogram(tally.histogram, class_weights)),
        colourfulness=colourfulness,
        delta_colourfulness=abs(colourfulness - _mean(truths[path]["colourfulness"] for path in tally.scores)),
        chroma_ratio=metrics.pooled_chroma_ratio([score["chroma"] for score in scores],
                                                 [truths[path]["chroma"] for path in tally.scores]),
    )


def _photo_record(path, truth, tallies):
    """One photo's entry in report.json: the truth's colourfulness and chroma, each method's scores."""
    methods = {name: tally.scores[path] for name, tally in tallies.items() if path in tally.scores}
    return {"path": path, "truth": truth, "methods": methods}


def _curves(tallies, class_weights):
    curves = {"thresholds": metrics.THRESHOLDS.tolist()}
    for name, tally in tallies.items():
        curves[name] = {
            "raw": metrics.curve_from_histogram(tally.histogram).tolist(),
            "rebalanced": metrics.curve_from_histogram(tally.histogram, class_weights).tolist(),
        }
    return curves


class _Extremes:
    """The `count` photos with the lowest and the highest AuC seen so far, with thumbnails of every output."""

    def __init__(self, count, methods):
        self.count, self.methods = count, methods
        self.worst, self.best = [], []

    def offer(self, auc, truth, images):
        # Ties broken by path, so the sheet depends on nothing but the inputs.
        worst_key, best_key = (auc, truth.path), (-auc, truth.path)
        if not (self._enters(self.worst, worst_key, _worst_key) or self._enters(self.best, best_key, _best_key)):
            return
        row = [_thumbnail(truth.rgb)] + [_thumbnail(images.get(name)) for name in self.methods]
        example = Example(truth.path, auc, row)
        self.worst = sorted([*self.worst, example], key=_worst_key)[: self.count]
        self.best = sorted([*self.best, example], key=_best_key)[: self.count]

    def _enters(self, kept, key, key_of):
        if len(kept) < self.count:
            return True
        return bool(kept) and key < key_of(kept[-1])

    def rows(self):
        """Worst first, then the best ones not already shown, best last."""
        shown = {example.path for example in self.worst}
        return self.worst + [example for example in reversed(self.best) if example.path not in shown]


def _worst_key(example):
    return example.auc, example.path


def _best_key(example):
    return -example.auc, example.path


def _thumbnail(image):
    if image is None:
        return None
    image = Image.fromarray(image if image.dtype == np.uint8 else _to_8bit(image))
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(image)


def write_report(report, out_dir):
    """Write report.json, report.md, the error-curve plot and the contact sheet into `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in REPORT_FILES]
    json_path, md_path, curves_path, sheet_path = paths
    with atomic_write(json_path) as tmp_path:
        Path(tmp_path).write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    thresholds = report.curves["thresholds"]
    line_plot(
        curves_path,
        {m.name: (thresholds, report.curves[m.name]["raw"]) for m in report.methods if m.images},
        xlabel="threshold (ab distance, Lab units)",
        ylabel="fraction of pixels within threshold",
        title=f"Cumulative ab error ({report.evaluated} photos)",
    )
    written = [json_path, curves_path]
    if report.examples:
        image_grid(
            sheet_path,
            [example.images for example in report.examples],
            row_labels=[f"{example.path}\nAuC {example.auc:.1f}" for example in report.examples],
            col_labels=["truth"] + [m.name for m in report.methods],
        )
        written.append(sheet_path)
    with atomic_write(md_path) as tmp_path:
        # File names need not be UTF-8: their odd bytes are written as \udcXX escapes.
        Path(tmp_path).write_text(report_markdown(report, has_sheet=bool(report.examples)), errors="backslashreplace")
    return [md_path, *written]


def report_markdown(report, has_sheet=True):
    """report.md: the protocol, the table of mean metrics, the figures and the problems."""
    lines = [
        "# Colorization evaluation",
        "",
        f"Photos: `{report.folder}`: {report.found} found, {report.evaluated} evaluated, "
        f"{len(report.problems)} problem(s).",
        "",
        f"Protocol: {report.protocol()}",
        "",
        "| method | kind | photos | AuC % | AuC rebal. % | PSNR dB | SSIM | colourfulness | abs dCF | chroma ratio |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in report.methods:
        lines.append(
            f"| {m.name} | {m.kind} | {m.images} | {m.auc:.2f} | {m.auc_rebalanced:.2f} | {m.psnr:.2f} | "
            f"{m.ssim:.4f} | {m.colourfulness:.2f} | {m.delta_colourfulness:.2f} | {m.chroma_ratio:.3f} |"
        )
    lines += ["", f"Colourfulness of the truth: {report.truth_colourfulness:.2f}.", ""]
    lines += ["Sources:", ""] + [f"- {m.name}: {m.source}" for m in report.methods] + [""]
    lines += ["## Error curves", "", "![cumulative ab error](error_curves.png)", ""]
    if has_sheet:
        lines += [
            "## Contact sheet",
            "",
            f"Photos with the lowest and highest AuC of `{report.ranked_by}`; columns: truth, "
            + ", ".join(m.name for m in report.methods) + ".",
            "",
            "![contact sheet](contact_sheet.png)",
            "",
        ]
    if report.problems:
        lines += ["## Problems", ""]
        lines += [f"- `{p.path}`{f' ({p.method})' if p.method else ''}: {p.reason}" for p in report.problems]
        lines.append("")
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value
