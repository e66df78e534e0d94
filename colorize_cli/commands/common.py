"""Options and error handling shared by every subcommand."""

import functools

import click

from colorize_cli.device import DEVICE_CHOICES, DeviceError, resolve_device
from colorize_cli.models.inference_tuning import PRECISIONS


def device_option(func):
    """Add --device cpu|cuda|cuda:N|auto; the command receives a torch.device."""

    def to_device(ctx, param, value):
        try:
            return resolve_device(value)
        except DeviceError as err:
            raise click.BadParameter(str(err)) from None

    return click.option(
        "--device",
        default="auto",
        show_default=True,
        callback=to_device,
        metavar="|".join(DEVICE_CHOICES) + "|cuda:N",
        help="Where the network runs; auto picks CUDA when present.",
    )(func)


def precision_option(func):
    """Add --precision auto|fp32|bf16 for the network's arithmetic."""
    return click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default="auto",
        show_default=True,
        help="Network arithmetic: auto uses bf16 where the device runs it natively (AVX-512 BF16/AMX CPUs, "
        "recent GPUs; ~1.5x faster, ab within 0.2), else fp32; fp32 for the most reproducible results.",
    )(func)


class FatalError(click.ClickException):
    """A one-line error that stops the command before any work: exit code 2, no usage dump."""

    exit_code = 2


def user_errors(*error_types):
    """Turn the library's user-facing errors into one-line click errors (exit 2) instead of tracebacks."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except error_types as err:
                raise FatalError(str(err)) from None

        return wrapper

    return decorate
