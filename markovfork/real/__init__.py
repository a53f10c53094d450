"""Real language models: per-problem counts of a base and a tuned model, the post-training map
fitted to them, predictions of the tuned pass@k curve and its crossover, and baselines
(docs/real-models.md)."""
