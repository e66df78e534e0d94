"""Click commands: each parses options, calls the library and prints; no work happens here.

The top of the package: every stage below is reachable from one of these four commands."""

from colorize_cli.commands.colorize import colorize_command
from colorize_cli.commands.evaluate import evaluate_command
from colorize_cli.commands.prep_dataset import prep_dataset_command
from colorize_cli.commands.train import train_command

# In the order `colorize --help` lists them: the default command first.
COMMANDS = (colorize_command, train_command, evaluate_command, prep_dataset_command)
