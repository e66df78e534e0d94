"""colorize: bring colour back to black-and-white photographs."""

__version__ = "0.1.0"
