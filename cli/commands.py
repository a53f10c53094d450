"""Registry of the command modules: importing one attaches its commands to ``cli.main``."""
