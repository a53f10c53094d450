"""Where each command lives: ``markovfork.cli.main`` imports a module the first time its command is used."""

COMMAND_MODULES = {
    "branching": "markovfork.cli.branching_cmd",
    "bridge": "markovfork.cli.bridge",
    "coverage": "markovfork.cli.coverage",
    "fit": "markovfork.cli.fit_cmd",
    "mitigations": "markovfork.cli.mitigations_cmd",
    "posttrain": "markovfork.cli.posttrain_cmd",
    "predict": "markovfork.cli.predict_cmd",
    "real-fit": "markovfork.cli.real_cmd",
    "simulate": "markovfork.cli.simulate_cmd",
    "sweep": "markovfork.cli.simulate_cmd",
    "tmc": "markovfork.cli.tmc_cmd",
    "tree": "markovfork.cli.tree_cmd",
}
