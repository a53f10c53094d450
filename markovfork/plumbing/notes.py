"""The warning category of configuration notes (no imports: the CLI installs its one-line display
before any command, or NumPy, is imported)."""

__all__ = ["ConfigNote"]


class ConfigNote(UserWarning):
    """A configuration value that is read correctly but whose meaning changed (e.g. the simulator's
    ``[task] depth``, now nodes per arm): shown, never an error; the CLI prints it as one
    ``markovfork: note:`` line on stderr."""
