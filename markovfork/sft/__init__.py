"""SFT as a reweighting of the fork task: task, data, model, training, evaluation, simulate/sweep."""
