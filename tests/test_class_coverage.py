"""scripts/class_coverage.py: ImageNet classes of photos, training counts, and gains over gray by count bucket."""

import json
import math
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data

from colorize_cli.colorize.colorizer import Colorizer
from colorize_cli.evaluate.report import evaluate_folder
from tests.conftest import load_script, small_photo
from tests.prep_helpers import write_photos


@pytest.fixture(scope="module")
def coverage():
    return load_script("scripts/class_coverage.py")


@pytest.fixture(scope="module")
def network(coverage):
    return coverage.colour_imagenet_network()


def test_the_classifier_names_what_a_colour_photo_shows(coverage, network):
    cat, coffee = coverage.classes_of(network, [data.chelsea(), data.coffee()])
    assert 281 <= cat <= 285  # the ImageNet cats
    assert coffee in (967, 968)  # espresso, cup


def test_every_training_photo_is_counted_once(coverage, network, tmp_path):
    write_photos(tmp_path / "photos", range(12), size=(48, 64))
    counts = coverage.training_class_counts(network, tmp_path / "photos")
    trained = len(coverage.open_dataset(tmp_path / "photos", split="train").store)
    assert sum(counts.values()) == trained > 0
    assert all(0 <= found < 1000 for found in counts)


@pytest.mark.parametrize("count, bucket", [(0, (0, 0)), (1, (1, 4)), (4, (1, 4)), (5, (5, 19)), (19, (5, 19)),
                                           (20, (20, None)), (5000, (20, None))])
def test_counts_fall_in_their_bucket(coverage, count, bucket):
    assert coverage.bucket_of(count) == bucket


def test_a_negative_count_is_refused(coverage):
    with pytest.raises(ValueError, match="cannot be negative"):
        coverage.bucket_of(-1)


def test_gains_over_gray_are_grouped_by_the_count_of_each_photo(coverage):
    def row(path, gray, gan):
        methods = {"gray": {"auc": gray}}
        if gan is not None:
            methods["gan"] = {"auc": gan}
        return {"path": path, "methods": methods}

    report = {"images": [row("a.jpg", 90.0, 91.5), row("b.jpg", 88.0, 87.0), row("c.jpg", 89.0, 92.0),
                         row("d.jpg", 85.0, None)]}
    counts = {"a.jpg": 0, "b.jpg": 0, "c.jpg": 30, "d.jpg": 3}
    gains = coverage.gains_by_bucket(report, counts, "gan")
    assert gains[(0, 0)] == pytest.approx([1.5, -1.0])
    assert gains[(20, None)] == pytest.approx([3.0])
    assert gains[(1, 4)] == [] and gains[(5, 19)] == []  # d.jpg was not scored by gan


def test_the_bootstrap_interval_holds_the_mean_and_narrows_with_more_photos(coverage):
    rng = np.random.default_rng(1)
    few, many = rng.normal(1.0, 2.0, 30), rng.normal(1.0, 2.0, 3000)
    for values in (few, many):
        mean, low, high = coverage.mean_with_interval(values)
        assert mean == pytest.approx(values.mean()) and low < mean < high
    assert np.ptp(coverage.mean_with_interval(many)[1:]) < np.ptp(coverage.mean_with_interval(few)[1:]) / 5
    assert coverage.mean_with_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert all(math.isnan(v) for v in coverage.mean_with_interval([]))


def test_the_command_prints_every_bucket_of_every_report(coverage, cnn_checkpoint, tmp_path, monkeypatch, capsys):
    write_photos(tmp_path / "train", range(10), size=(48, 64))
    scored = tmp_path / "scored"
    scored.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(small_photo(name, (64, 64))).save(scored / f"{name}.png")
    colorizer = Colorizer.from_checkpoint(str(cnn_checkpoint), "cpu", precision="fp32")
    report = evaluate_folder(scored, {"m": colorizer}, crop=32, examples=0).to_dict()
    (tmp_path / "report.json").write_text(json.dumps(report))
    monkeypatch.setattr(sys, "argv", ["class_coverage.py", str(tmp_path / "train"), str(tmp_path / "report.json"),
                                      str(tmp_path / "report.json")])
    coverage.main()
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {tmp_path}")]
    assert len(rows) == 2 * len(coverage.BUCKETS)  # one method, each report
    assert sum(int(row[3]) for row in rows) == 2 * 3  # every scored photo in one bucket
