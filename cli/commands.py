"""Registry of the command modules: importing one attaches its commands to ``cli.main``."""

from cli import bridge  # noqa: F401,E402
from cli import coverage  # noqa: F401,E402
from cli import tree_cmd  # noqa: F401,E402
from cli import simulate_cmd  # noqa: F401,E402
