"""The `colorize` command line: a group whose default subcommand colorizes photos."""

import os
import threading
import warnings

import click
from PIL import Image

from colorize_cli import __version__
from colorize_cli.commands import COMMANDS
from colorize_cli.photos.io import path_being_read
from colorize_cli.progress import one_line

DEFAULT_COMMAND = "colorize"


class DefaultCommandGroup(click.Group):
    """A group where `colorize PATH...` means `colorize colorize PATH...`."""

    def parse_args(self, ctx, args):
        group_flags = {"--help", "-h", "--version"}
        if args and args[0] not in self.commands and args[0] not in group_flags:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx):
        # The default command first, then the rest in the order a user meets them.
        return list(self.commands)


@click.group(
    cls=DefaultCommandGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  colorize ./old_photos                      # colorize a folder tree into ./old_photos_colorized
  colorize scan.tif --model gan --device cuda
  colorize train --model gan --data photos/ --out runs/gan-1
  colorize evaluate val_photos/ --model gan --model cnn
  colorize prep-dataset places.tar -o data/places

Run `colorize COMMAND --help` for each command's options.""",
)
@click.version_option(__version__, "--version", prog_name="colorize")
def cli():
    """Bring colour back to black-and-white photographs, in batches, offline.

    Without a command name, the arguments go to `colorize colorize`.
    """


for command in COMMANDS:
    cli.add_command(command)


def main():
    """Console-script entry point."""
    warnings.showwarning = _show_warning
    # Pillow's warnings do not name the file, so each file's is shown, not only the first of a kind.
    warnings.filterwarnings("always", category=UserWarning, module=r"PIL\.")
    # read_image refuses an image over its pixel limit in one line; Pillow's bomb warning would only say it first.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    cli(prog_name="colorize")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A warning as one line on stderr, without Python's source excerpt: `warning: <message>`, naming the
    file being read when the message (one of Pillow's) does not."""
    text = " ".join(str(message).split())
    path = path_being_read()
    if path is not None and os.fspath(path) not in text:
        text = f"{os.fspath(path)}: {text}"
    if text == getattr(_last_warning, "text", None):  # Pillow may say it twice while reading one file
        return
    _last_warning.text = text
    click.echo(f"warning: {one_line(text)}", err=True)


_last_warning = threading.local()
