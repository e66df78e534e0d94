"""Shared fixtures: small photos made from scikit-image's bundled samples and a small checkpoint."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings
from PIL import Image
from skimage import data, transform

from colorize_cli.models import build_model
from colorize_cli.models.checkpoint import save_checkpoint

# Property tests draw the same examples every run: a suite that fails one run in three is a defect, and a
# case found once must be found again (a rare Lab round-trip seam was found by one random draw of many).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture(scope="session")
def cnn_checkpoint(tmp_path_factory):
    """A cnn checkpoint with fixed random weights: for testing the plumbing, never for quality."""
    torch.manual_seed(1234)
    path = tmp_path_factory.mktemp("weights") / "cnn.safetensors"
    save_checkpoint(path, build_model("cnn"))
    return path


def load_script(relative_path):
    """A script of the repository (bench/, scripts/: folders of scripts, not packages) loaded as a module."""
    path = Path(__file__).resolve().parents[1] / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_photo(name="astronaut", size=(96, 128)):
    """A bundled colour sample resized to `size` (H, W), as uint8 RGB."""
    image = getattr(data, name)()
    return (transform.resize(image, size, anti_aliasing=True) * 255).round().astype(np.uint8)


@pytest.fixture
def photo_tree(tmp_path):
    """photos/ with a gray JPEG, a colour PNG in a subfolder and a text file."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    gray = small_photo("astronaut")[..., 0]
    Image.fromarray(gray).save(root / "gray.jpg", quality=92)
    Image.fromarray(small_photo("chelsea")).save(root / "sub" / "cat.png")
    (root / "notes.txt").write_text("not an image")
    return root
