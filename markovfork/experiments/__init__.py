"""Experiments built on the dynamics: mitigations side by side, the TMC experiment, RL after SFT."""
