"""How a model's gain over gray depends on how often the training data shows what a scored photo shows.

    python scripts/class_coverage.py data/photos-train docs/eval-imagenet-sample-dev/report.json
    python scripts/class_coverage.py data/photos-train runs/eval-a/report.json runs/eval-b/report.json --methods gan

The package's ImageNet classifier (EfficientNet-Lite0 on colour input, 224 px centre crop) names the
class of every training photo (the train split of a prep-dataset output or plain folder) and of every
photo that a `colorize evaluate` report scored. Each scored photo is then counted by how many training
photos share its class, and per count bucket this prints each method's mean AuC gain over the gray
baseline with a 95 % bootstrap interval and the share of photos where the method beats gray. A gain that
grows with the count says that missing content holds the model back; a flat one says it does not.
"""

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorize_cli.models.efficientnet_lite import colour_imagenet_network, rgb_to_network_input
from colorize_cli.train.datasets import open_dataset

SIDE, CROP = 256, 224  # the ImageNet evaluation protocol: short side 256, centre 224
BUCKETS = ((0, 0), (1, 4), (5, 19), (20, None))  # training photos of the scored photo's class
BATCH = 32
BOOTSTRAP_DRAWS = 2000


def _network_input(rgb):
    """uint8 RGB [H,W,3] -> the classifier's [3,224,224] input, resized and centre-cropped as ImageNet's."""
    image = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255  # a copy: memmaps are read-only
    height, width = image.shape[-2:]
    scale = SIDE / min(height, width)
    size = (max(CROP, round(height * scale)), max(CROP, round(width * scale)))
    image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    top, left = (size[0] - CROP) // 2, (size[1] - CROP) // 2
    return rgb_to_network_input(image[0, :, top : top + CROP, left : left + CROP])


@torch.inference_mode()
def classes_of(network, images):
    """The top ImageNet class of each uint8 RGB image of an iterable."""
    found, batch = [], []
    for rgb in images:
        batch.append(_network_input(rgb))
        if len(batch) == BATCH:
            found += _classify(network, batch)
            batch = []
    return found + (_classify(network, batch) if batch else [])


def _classify(network, batch):
    return network.logits_of_input(torch.stack(batch)).argmax(1).tolist()


def training_class_counts(network, data):
    """{ImageNet class: training photos of it} over the train split of `data`."""
    store = open_dataset(data, split="train", augment=False).store
    return Counter(classes_of(network, (store.pixels(i) for i in range(len(store)))))


def bucket_of(count):
    for low, high in BUCKETS:
        if count >= low and (high is None or count <= high):
            return (low, high)
    raise ValueError(f"a count of training photos cannot be negative: {count}")


def gains_by_bucket(report, photo_counts, method):
    """{bucket: [AuC of `method` - AuC of gray, one per scored photo]} from a report's per-photo rows."""
    found = {bucket: [] for bucket in BUCKETS}
    for row in report["images"]:
        scores = row["methods"]
        if method in scores:
            found[bucket_of(photo_counts[row["path"]])].append(scores[method]["auc"] - scores["gray"]["auc"])
    return found


def mean_with_interval(values, draws=BOOTSTRAP_DRAWS, seed=0):
    """Mean and the 2.5 and 97.5 percentiles of bootstrap means (NaNs for no values)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    means = values[np.random.default_rng(seed).integers(0, len(values), (draws, len(values)))].mean(axis=1)
    return float(values.mean()), *(float(p) for p in np.percentile(means, [2.5, 97.5]))


def _bucket_name(bucket):
    low, high = bucket
    return f"{low}" if low == high else f"{low}+" if high is None else f"{low}-{high}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the training data (prep-dataset output or folder)")
    parser.add_argument("reports", type=Path, nargs="+", help="report.json files of `colorize evaluate --out`")
    parser.add_argument("--methods", help="comma-separated method names [default: every model in each report]")
    parser.add_argument("--photos", type=Path, help="the scored folder [default: each report's, as evaluate was given it]")
    args = parser.parse_args()

    network = colour_imagenet_network()
    counts = training_class_counts(network, args.data)
    print(f"{sum(counts.values())} training photos in {len(counts)} ImageNet classes")
    classes = {}  # of the scored photos, by path: reports of one folder classify it once
    print("| report | method | training photos of the class | scored photos | AuC gain over gray | 95 % interval | beats gray |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for path in args.reports:
        report = json.loads(path.read_text())
        folder = args.photos or Path(report["folder"])
        new = [row["path"] for row in report["images"] if folder / row["path"] not in classes]
        found = classes_of(network, (np.asarray(Image.open(folder / name).convert("RGB")) for name in new))
        classes.update({folder / name: c for name, c in zip(new, found, strict=True)})
        photo_counts = {row["path"]: counts.get(classes[folder / row["path"]], 0) for row in report["images"]}
        methods = (args.methods.split(",") if args.methods
                   else [m["name"] for m in report["methods"] if m["kind"] == "model"])
        for method in methods:
            for bucket, gains in gains_by_bucket(report, photo_counts, method).items():
                mean, low, high = mean_with_interval(gains)
                wins = np.mean(np.asarray(gains) > 0) if gains else float("nan")
                print(f"| {path} | {method} | {_bucket_name(bucket)} | {len(gains)} | {mean:+.2f} | "
                      f"{low:+.2f} to {high:+.2f} | {wins:.0%} |", flush=True)


if __name__ == "__main__":
    main()
