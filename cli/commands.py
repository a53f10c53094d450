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

# The first sentence of each command's docstring, for ``markovfork --help`` without importing every
# command (NumPy, Numba, Polars: about half a second). tests/cli/test_vocabulary.py checks them.
COMMAND_HELP = {
    "branching": "SFT on convergent vs branch-heavy trajectories: loss per token and success within a budget.",
    "bridge": "Train small transformers on the path-star task; measure pass@k (needs the `bridge` extra).",
    "coverage": "Exact and sampled pass@k of the base policy for a list of k.",
    "fit": "Fit the simulator to measured results tables RUNS (CSV or Parquet, results schema) and predict "
           "held-out rhos or epochs, next to baselines.",
    "mitigations": "Price every mitigation against one fork-heavy SFT run: decoding (temperature, min-p, "
                   "spread-first), data (problem-level diversity, rationale) and filtering branch-heavy data.",
    "posttrain": "RL post-training on the fork task: pass@k of base, start (SFT) and RL model.",
    "predict": "Predict the pass@k curves (per rho, diversity, epoch, k) of a bridge run not yet made.",
    "real-fit": "Fit the two-group post-training map (docs/real-models.md) to the per-problem counts of a base "
                "and a tuned model; print the fitted parameters, the predicted vs measured tuned pass@k with "
                "bootstrap intervals, the crossover k* and the baselines.",
    "simulate": "Fine-tune on a mix of fork and fork-free trajectories and compare pass@k with the base model.",
    "sweep": "Run the grid rho x epochs x lr x seeds x diversity x temperature in parallel and tabulate shrinkage.",
    "tmc": "Fine-tune a pretrained chain policy on task 1 with each method; score pass@1, pass@K and the easy / "
           "hard / invalid path shares on both tasks.",
    "tree": "Describe a generated fork tree, a TMC (--tmc) or a JSON tree (--from-json).",
}
