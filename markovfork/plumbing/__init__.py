"""Plumbing: checks, I/O and the output contract, configuration readers, seeds, executors."""
