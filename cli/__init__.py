"""The ``markovfork`` command tree: a thin click layer over the Python API.

Every error caused by the user's input (click's usage errors and the library's ``ValueError``)
is printed as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import os

# One OpenBLAS thread unless the user asked otherwise. Must run before anything imports NumPy:
# the simulations multiply small matrices, where a multi-threaded OpenBLAS only adds
# synchronisation (10-30x slower on a loaded 2-core machine), and sweeps already use every core
# through worker processes.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import importlib  # noqa: E402
import sys  # noqa: E402

import click  # noqa: E402

from markovfork import __version__  # noqa: E402


class _OneLineErrors(click.Group):
    """A click group that reports bad input as a single ``Error: ...`` line, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (ValueError, FileNotFoundError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)


class _LazyCommands(_OneLineErrors):
    """Imports a command's module only when that command runs (or when --help lists them all),
    so ``markovfork simulate`` does not pay for the bridge, plotting or table libraries."""

    def list_commands(self, ctx):
        from markovfork.cli.commands import COMMAND_MODULES

        return sorted(COMMAND_MODULES)

    def get_command(self, ctx, name):
        from markovfork.cli.commands import COMMAND_MODULES

        if name not in self.commands and name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[name])  # its decorators attach it to ``main``
        return super().get_command(ctx, name)


@click.group(cls=_LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="markovfork")
def main() -> None:
    """markovfork: predict how post-training trades pass@k for pass@1.

    Chain-of-thought is a walk over a reasoning tree; fine-tuning reweights it. Commands
    simulate that reweighting exactly or by sampling and measure pass@k.
    """

