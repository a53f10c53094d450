"""``python -m markovfork.cli``: the same program as the ``markovfork`` script."""

from markovfork.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports the parent's main module
    main()
