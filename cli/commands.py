"""Where each command lives: ``cli.main`` imports a module the first time its command is used."""

COMMAND_MODULES = {
    "bridge": "cli.bridge",
    "coverage": "cli.coverage",
    "simulate": "cli.simulate_cmd",
    "sweep": "cli.simulate_cmd",
    "tree": "cli.tree_cmd",
}
