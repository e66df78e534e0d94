"""A path that vanished between `find` and `colorize` is one bad file: named, the rest done, exit 1."""

from click.testing import CliRunner

from colorize_cli.cli import cli


def run(*args, stdin=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin, catch_exceptions=False)


def test_a_missing_path_in_files_from_is_named_once_and_the_rest_is_colorized(photo_tree, cnn_checkpoint, tmp_path):
    listing = f"{photo_tree / 'gray.jpg'}\n/gone/z.jpg\n{photo_tree / 'sub' / 'cat.png'}\n"
    out = tmp_path / "out"
    result = run("--files-from", "-", "-o", out, "--model", cnn_checkpoint, stdin=listing)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: /gone/z.jpg: no such file or folder"]
    # The loose files keep the layout they would have had without the missing one.
    assert (out / "gray.jpg").is_file() and (out / "sub" / "cat.png").is_file()
    assert "2 of 3 image(s) colorized" in result.output


def test_a_missing_argument_is_one_bad_file_too(photo_tree, cnn_checkpoint, tmp_path):
    result = run(photo_tree, tmp_path / "not-there", "-o", tmp_path / "out", "--model", cnn_checkpoint)
    assert result.exit_code == 1, result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        f"error: {tmp_path / 'not-there'}: no such file or folder"
    ]
    # The folder is mirrored as if it had been given alone.
    assert (tmp_path / "out" / "gray.jpg").is_file() and (tmp_path / "out" / "sub" / "cat.png").is_file()


def test_an_output_folder_inside_an_input_stays_a_usage_error(photo_tree, cnn_checkpoint, tmp_path):
    result = run(photo_tree, tmp_path / "not-there", "-o", photo_tree / "colour", "--model", cnn_checkpoint)
    assert result.exit_code == 2 and "inside input folder" in result.output
