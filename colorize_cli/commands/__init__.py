"""Click commands: each parses options, calls the library and prints; no work happens here."""

import importlib

# Module name -> click command attribute, in the order `colorize --help` lists them.
_COMMANDS = (
    ("colorize_cli.commands.colorize", "colorize_command"),
    ("colorize_cli.commands.train", "train_command"),
    ("colorize_cli.commands.evaluate", "evaluate_command"),
    ("colorize_cli.commands.prep_dataset", "prep_dataset_command"),
)


def registered_commands():
    """The built subcommands (a module that does not exist yet is simply not offered)."""
    commands = []
    for module_name, attribute in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        commands.append(getattr(module, attribute))
    return commands
