"""Registry of the command modules: importing one attaches its commands to ``cli.main``."""
from cli import bridge  # noqa: F401
