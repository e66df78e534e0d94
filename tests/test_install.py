"""`pip install .` (not editable) gives a tool that finds its shipped weights from any working directory."""

import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_the_weights_and_colorizes_from_another_folder(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)],
                   check=True, cwd=tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.check_output(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip())
    # The new venv borrows torch & co. from this one (a path, so this venv's editable install is not seen)
    # and gets the package itself only from the wheel.
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("colorize-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--quiet", str(wheel)], check=True)

    installed = site / "colorize_cli" / "weights"
    sums = (installed / "SHA256SUMS").read_text().split("\n")
    for line in filter(None, sums):
        digest, name = line.split()
        assert hashlib.sha256((installed / name.lstrip("*")).read_bytes()).hexdigest() == digest, name
    # The ImageNet weights inside gan and autoencoder are Apache-2.0: its text travels with them.
    assert "Apache License" in (installed / "LICENSE-EfficientNet-Lite.txt").read_text()
    with zipfile.ZipFile(wheel) as archive:
        assert any(name.endswith("licenses/LICENSE") or name.endswith("/LICENSE") for name in archive.namelist())

    work = tmp_path / "elsewhere"
    work.mkdir()
    Image.fromarray(np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))).save(work / "gray.png")
    env = {k: v for k, v in os.environ.items() if k != "COLORIZE_WEIGHTS"}
    run = subprocess.run([venv / "bin" / "colorize", "gray.png", "-o", "out", "--json"], check=False, cwd=work, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert Image.open(work / "out" / "gray.png").mode == "RGB"
    where = subprocess.check_output([venv / "bin" / "python", "-c", "import colorize_cli; print(colorize_cli.__file__)"],
                                    cwd=work, text=True)
    assert where.startswith(str(site))
