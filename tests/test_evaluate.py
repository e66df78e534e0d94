"""`colorize evaluate` on a tiny folder of generated photos: numbers, bad inputs, report files, the CLI."""

import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.color import lab2rgb, rgb2lab
from skimage.metrics import peak_signal_noise_ratio

from colorize_cli.cli import cli
from colorize_cli.colour import metrics
from colorize_cli.evaluate.report import (
    GRAY,
    REPORT_FILES,
    crop_photo,
    evaluate_folder,
    method_names,
    resolve_methods,
    write_report,
)

CROP = 32


def _photo(seed, height=40, width=48):
    """A colourful test photo: smooth colour gradients plus a saturated block."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = rng.uniform(0, 2 * np.pi, 3)
    rgb = 0.5 + 0.4 * np.sin(np.stack([3 * x + phase[0], 2 * y + phase[1], 2 * (x + y) + phase[2]], -1))
    rgb[5:15, 10:20] = rng.uniform(0, 1, 3)
    return (rgb * 255).round().astype(np.uint8)


@pytest.fixture
def dataset(tmp_path):
    """photos/ with five colour PNGs (one in a subfolder), a corrupt file and a gray one; preds/ = the truth,
    with one prediction missing, one of the wrong size, one unreadable and one under another suffix."""
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    names = ["a.png", "b.png", "c.png", "d.png", "sub/e.png"]
    for seed, name in enumerate(names):
        Image.fromarray(_photo(seed)).save(photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    Image.fromarray(np.full((40, 48), 128, np.uint8)).save(photos / "gray.png")
    preds = tmp_path / "preds"
    shutil.copytree(photos, preds)
    (preds / "a.png").unlink()  # missing
    Image.fromarray(_photo(1, 30, 30)).save(preds / "b.png")  # wrong size
    Image.open(preds / "c.png").save(preds / "c.bmp")  # another suffix, same pixels
    (preds / "c.png").unlink()
    (preds / "d.png").write_bytes(b"\x89PNG truncated")  # unreadable
    return photos, preds


def test_crop_photo_resizes_the_short_side_then_takes_the_centre():
    rgb = np.random.default_rng(0).random((40, 48, 3)).astype(np.float32)
    assert crop_photo(rgb, 32).shape == (32, 32, 3)
    assert crop_photo(rgb, None) is rgb
    # A short side that already has the crop size is cut, not resampled.
    np.testing.assert_array_equal(crop_photo(rgb, 40), rgb[:, 4:44])


def test_a_long_strip_is_cut_before_it_is_resized():
    strip = np.random.default_rng(1).random((2, 100_000, 3)).astype(np.float32)
    # Resized whole, it would become a 256 x 12,800,000 float image (39 GB) on the way to the 256 px square.
    assert crop_photo(strip, 256).shape == (256, 256, 3)


def test_method_names_are_short_and_unique():
    assert method_names(["gan", "runs/x/best.safetensors", "out/deoldify/"]) == ["gan", "best", "deoldify"]
    assert method_names(["a/best.safetensors", "b/best.safetensors"]) == ["a/best.safetensors", "b/best.safetensors"]
    assert method_names(["preds/gray"]) == ["preds/gray"]  # never shadows the baseline


def test_evaluate_scores_every_method_and_lists_bad_inputs(dataset, cnn_checkpoint):
    photos, preds = dataset
    colorizers, predictions = resolve_methods([str(cnn_checkpoint)], [preds])
    report = evaluate_folder(photos, colorizers, predictions, crop=CROP, examples=2)

    assert [m.name for m in report.methods] == [GRAY, "cnn", "preds"]
    assert (report.found, report.evaluated) == (7, 5)
    by_name = {m.name: m for m in report.methods}
    assert by_name[GRAY].images == by_name["cnn"].images == 5
    problems = {(p.path, p.method): p.reason for p in report.problems}
    assert set(problems) == {
        ("broken.jpg", None), ("gray.png", None), ("a.png", "preds"), ("b.png", "preds"), ("d.png", "preds")
    }
    assert "grayscale" in problems[("gray.png", None)]
    assert "30x30" in problems[("b.png", "preds")] and "48x40" in problems[("b.png", "preds")]
    assert problems[("d.png", "preds")].startswith(str(preds / "d.png"))

    # The truth scored against itself (c via c.bmp, e by name): perfect.
    truth = by_name["preds"]
    assert truth.images == 2
    assert (truth.auc, truth.auc_rebalanced, truth.psnr, truth.ssim) == (100.0, 100.0, math.inf, 1.0)
    assert (truth.delta_colourfulness, truth.chroma_ratio) == (0.0, 1.0)

    gray = by_name[GRAY]
    assert 0 < gray.auc_rebalanced < gray.auc < 100
    assert gray.chroma_ratio == pytest.approx(0.0, abs=0.01)
    assert gray.delta_colourfulness == pytest.approx(report.truth_colourfulness, rel=0.05)
    assert report.curves["thresholds"] == list(range(151))
    assert np.mean(report.curves[GRAY]["raw"]) * 100 == pytest.approx(gray.auc)
    # Pooled over equally sized crops, the AuC is the mean of the per-photo AuCs.
    assert gray.auc == pytest.approx(np.mean([image["methods"][GRAY]["auc"] for image in report.images]))


def test_gray_baseline_matches_the_metrics_on_the_photo(dataset, tmp_path):
    photos, _ = dataset
    report = evaluate_folder(photos, crop=CROP, limit=1, examples=0)
    assert report.found == 1 and len(report.methods) == 1 and report.examples == []
    assert {p.name for p in write_report(report, tmp_path / "out")} == set(REPORT_FILES) - {"contact_sheet.png"}
    rgb = (crop_photo(np.asarray(Image.open(photos / "a.png"), np.float32) / 255, CROP) * 255).round() / 255
    scores = report.images[0]["methods"][GRAY]
    assert report.truth_colourfulness == pytest.approx(metrics.colourfulness(rgb))
    # Reference: scikit-image's Lab, ab set to 0, back to 8-bit RGB.
    lab = rgb2lab(rgb)
    gray = (lab2rgb(np.concatenate([lab[..., :1], np.zeros_like(lab[..., 1:])], -1)) * 255).round() / 255
    assert scores["psnr"] == pytest.approx(peak_signal_noise_ratio(rgb, gray, data_range=1.0), abs=1e-3)
    assert scores["colourfulness"] < 0.5
    # Its ab error is the truth's chroma, up to the 8-bit rounding of the gray image.
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    assert scores["auc"] == pytest.approx(100 * np.mean([(chroma <= t).mean() for t in range(151)]), abs=0.5)


def test_report_files_and_determinism(dataset, cnn_checkpoint, tmp_path):
    photos, preds = dataset
    colorizers, predictions = resolve_methods([str(cnn_checkpoint)], [preds])
    report = evaluate_folder(photos, colorizers, predictions, crop=CROP, examples=2)
    again = evaluate_folder(photos, colorizers, predictions, crop=CROP, examples=2)
    assert json.dumps(report.to_dict()) == json.dumps(again.to_dict())

    written = write_report(report, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(REPORT_FILES)
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["protocol"]["crop"] == CROP and "centre 32x32 crop" in data["protocol"]["description"]
    assert data["methods"][2]["psnr"] == "inf"
    assert data["counts"] == {"found": 7, "evaluated": 5, "problems": 5}
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| gray | baseline | 5 |" in markdown and "| preds | predictions | 2 | 100.00 | 100.00 | inf |" in markdown
    assert "`broken.jpg`" in markdown
    # Two worst and two best of 5 photos, columns truth, gray, cnn, preds.
    assert len(report.examples) == 4 and all(len(e.images) == 4 for e in report.examples)
    aucs = [e.auc for e in report.examples]
    assert aucs[:2] == sorted(aucs)[:2] and aucs[-1] == max(aucs)
    for name in ("error_curves.png", "contact_sheet.png"):
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == "PNG" and image.width > 200


def test_cli_json_and_table(dataset, cnn_checkpoint, tmp_path):
    photos, preds = dataset
    runner = CliRunner()
    args = ["evaluate", str(photos), "--model", str(cnn_checkpoint), "--predictions", str(preds), "--crop", str(CROP)]
    result = runner.invoke(cli, [*args, "--json", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output  # scored, but broken.jpg and some predictions could not be
    data = json.loads(result.stdout)
    assert [m["name"] for m in data["methods"]] == [GRAY, "cnn", "preds"]
    assert (tmp_path / "out" / "report.md").is_file()

    result = runner.invoke(cli, [*args, "--limit", "3", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "gray" in result.output and "AuC" in result.output and "problem" in result.output


def test_cli_help_and_user_errors(dataset, tmp_path):
    photos, _ = dataset
    runner = CliRunner()
    result = runner.invoke(cli, ["evaluate", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--predictions" in result.output

    result = runner.invoke(cli, ["evaluate", str(photos), "--out", str(photos / "report")])
    assert result.exit_code == 2 and "inside" in result.output
    result = runner.invoke(cli, ["evaluate", str(photos), "--model", str(tmp_path / "none.safetensors")])
    assert result.exit_code == 2 and "no such checkpoint" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no images" in result.output


def test_exit_code_says_whether_anything_failed_and_colourless_photos_only_leave_out(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(_photo(0)).save(photos / "a.png")
    Image.fromarray(np.full((40, 48), 128, np.uint8)).save(photos / "gray.png")
    runner = CliRunner()

    assert runner.invoke(cli, ["evaluate", str(photos), "--json"]).exit_code == 0  # gray.png: left out
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    failed = runner.invoke(cli, ["evaluate", str(photos), "--json"])
    assert failed.exit_code == 1
    problems = {p["path"]: p["excluded"] for p in json.loads(failed.stdout)["problems"]}
    assert problems == {"broken.jpg": False, "gray.png": True}
    for name in ("a.png", "broken.jpg"):
        (photos / name).unlink()
    nothing = runner.invoke(cli, ["evaluate", str(photos)])
    assert nothing.exit_code == 2 and "no colour photo to score" in nothing.output


@pytest.mark.parametrize("crop", [0, 1, 4])
def test_photos_under_ssims_window_are_scored(tmp_path, crop):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for name, shape in [("tiny.png", (5, 5, 3)), ("thin.png", (2, 9, 3)), ("big.png", (40, 50, 3))]:
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(photos / name)

    report = evaluate_folder(photos, crop=crop or None, examples=0)

    assert report.evaluated == 3 and not report.problems
    [gray] = report.methods
    assert np.isfinite(gray.ssim) == (crop != 1) and np.isfinite(gray.auc)  # a 1 px crop has no SSIM
