"""The command group: help, version, default command routing, device selection, process settings."""

import os
import subprocess
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from colorize_cli import __version__
from colorize_cli.cli import cli
from colorize_cli.device import DeviceError, resolve_device


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


def test_help_lists_the_four_commands_with_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("colorize", "train", "evaluate", "prep-dataset"):
        assert f"  {name} " in result.output
    assert "Examples:" in result.output


@pytest.mark.parametrize("command", ["colorize", "train", "evaluate", "prep-dataset"])
def test_every_command_help_teaches_with_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "\n    colorize " in result.output
    assert "TODO" not in result.output


def test_version():
    assert invoke("--version").output.strip() == f"colorize, version {__version__}"


def test_paths_without_a_command_go_to_colorize(tmp_path, cnn_checkpoint):
    (tmp_path / "empty").mkdir()
    result = invoke(tmp_path / "empty", "--model", cnn_checkpoint, "-o", tmp_path / "out")
    assert result.exit_code == 0
    assert "0 of 0 image(s)" in result.output
    assert invoke("--device", "cpu", "--help").exit_code == 0  # options first also reach colorize


def test_device_choice():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="expected one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")
        result = invoke("photos", "--device", "cuda")
        assert result.exit_code == 2 and "CUDA is not available" in result.output


def test_library_api_is_importable_from_the_package():
    import colorize_cli

    for name in colorize_cli.__all__:
        assert getattr(colorize_cli, name) is not None
        assert not isinstance(getattr(colorize_cli, name), types.ModuleType), name  # an export, not a subpackage
    with pytest.raises(AttributeError):
        colorize_cli.no_such_thing


def test_train_model_is_the_function_also_after_the_train_subpackage_loaded():
    code = ("import colorize_cli.train.loop\nfrom colorize_cli import train_model\n"
            "assert train_model is colorize_cli.train.loop.train")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("setting", "expected"), [(None, "False"), ("1", "True")])
def test_numpy_huge_pages_are_off_unless_the_user_asks(setting, expected):
    # Checked in a fresh interpreter: numpy reads the setting once, when it is first imported.
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if setting is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = setting
    code = "import colorize_cli, numpy._core.multiarray as m; print(m._get_madvise_hugepage())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == expected
