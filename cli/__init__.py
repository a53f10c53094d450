"""The ``markovfork`` command tree: a thin click layer over the Python API.

Every error caused by the user's input (click's usage errors, the library's ``ValueError`` and
any ``OSError`` on an input or output file) is printed as one line on stderr with exit code 2,
never a traceback. SIGINT and SIGTERM end a command with exit code 130 and 143 (after the
command's clean-up: no temporary file, no worker process left), also during start-up.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


_received: list[int] = []  # the signals our handler raised on, in this command


def _exit_on_signal(signum, frame):
    _received.append(signum)
    raise SystemExit(128 + signum)


def _quiet_unraisable(unraisable) -> None:
    """``sys.unraisablehook`` while a command runs: our signal's ``SystemExit`` raised inside a
    callback that cannot propagate it (Numba's object-cache callback during compilation) is not
    reported ("Exception ignored ..."); the command still ends with 128 + signal."""
    if _received or isinstance(unraisable.exc_value, (SystemExit, KeyboardInterrupt)):
        return
    sys.__unraisablehook__(unraisable)


def _signal_behind(exc: BaseException | None) -> int | None:
    """The signal that ``exc`` stands for: one our handler received during this command (whatever
    became of its ``SystemExit``: Numba's compiler, for one, catches it mid-compilation and raises
    its own error instead), or a ``KeyboardInterrupt`` in the exception's chain (SIGINT under
    Python's own handler). None for an ordinary error."""
    if _received:
        return _received[0]
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            return signal.SIGINT
        exc = exc.__cause__ or exc.__context__
    return None


def _exit_quietly_on_signals() -> dict:
    """SIGINT and SIGTERM raise ``SystemExit(128 + signal)``: ``finally`` blocks run (temporary
    files, worker processes), then Python exits with that code and no traceback. Returns the
    handlers it replaced."""
    saved = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not signal.SIG_IGN and handler is not None:
            saved[signum] = signal.signal(signum, _exit_on_signal)
    if saved and sys.unraisablehook is sys.__unraisablehook__:
        sys.unraisablehook = _quiet_unraisable
    return saved


def _started_as_command() -> bool:
    """Run as the ``markovfork`` script or ``python -m markovfork.cli`` (not imported as a library)."""
    if sys.argv and os.path.basename(sys.argv[0]) == "markovfork":
        return True
    argv = list(getattr(sys, "orig_argv", ()))
    return "-m" in argv and argv[argv.index("-m") + 1:argv.index("-m") + 2] == ["markovfork.cli"]


# Run as a command: quiet on Ctrl-C from the first import on (start-up imports NumPy, polars and
# Numba, about a second). Imported as a library, nothing changes until ``main`` runs.
def _no_collection_at_exit() -> None:
    """At exit (the last ``atexit`` handler: registered first), stop the cyclic garbage collector
    and move every live object out of its reach (``gc.freeze``). The interpreter's teardown still
    flushes and closes the standard streams and frees objects by reference count, but its
    collections no longer walk the ~10^5 objects alive then (Numba's typing and lowering registries):
    ~0.1 s of a ~0.7 s ``tmc --json`` (``docs/performance.md``, start-up). Outputs are written
    and closed before (``plumbing.io.write_outputs``); what is left unfreed is the process's
    memory, which the OS takes back."""
    import gc

    gc.disable()
    gc.freeze()


if _started_as_command():
    _exit_quietly_on_signals()
    import atexit

    atexit.register(_no_collection_at_exit)

# One OpenBLAS thread unless the user asked otherwise. Must run before anything imports NumPy:
# the simulations multiply small matrices, where a multi-threaded OpenBLAS only adds
# synchronisation (10-30x slower on a loaded 2-core machine), and sweeps already use every core
# through worker processes.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import contextlib  # noqa: E402
import importlib  # noqa: E402

import click  # noqa: E402

from markovfork import __version__  # noqa: E402


class _OneLineErrors(click.Group):
    """A click group that reports bad input as a single ``Error: ...`` line, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        in_main_thread = threading.current_thread() is threading.main_thread()
        saved = _exit_quietly_on_signals() if in_main_thread else {}
        _received.clear()
        try:
            with _config_notes_on_one_line():
                try:
                    result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                except BaseException as exc:  # a signal, however it surfaced, ends the command with 128 + signal
                    signum = _signal_behind(exc)
                    if signum is not None:
                        raise SystemExit(128 + signum) from None
                    raise
            if _received:  # the signal's exception was swallowed on the way (a library caught it)
                raise SystemExit(128 + _received[0])
            return result
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:  # no arguments: the help, as --help
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.Abort as exc:  # Ctrl-C under a handler that raises KeyboardInterrupt
            click.echo("Aborted.", err=True)
            sys.exit(130 if isinstance(exc.__cause__, KeyboardInterrupt) else 1)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except ValueError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:
            click.echo(f"Error: {describe_os_error(exc)}", err=True)
            sys.exit(2)
        except OverflowError as exc:  # a number beyond what the arrays hold (64-bit integers, floats)
            click.echo(f"Error: a value is too large: {exc} (choose smaller sizes)", err=True)
            sys.exit(2)
        except MemoryError:
            click.echo("Error: out of memory (choose smaller sizes)", err=True)
            sys.exit(2)
        finally:  # a caller that imported the CLI (tests, notebooks) gets its own handlers back
            for signum, handler in saved.items():
                signal.signal(signum, handler)
            if saved and sys.unraisablehook is _quiet_unraisable:
                sys.unraisablehook = sys.__unraisablehook__


@contextlib.contextmanager
def _config_notes_on_one_line():
    """A :class:`~markovfork.plumbing.config_reader.ConfigNote` (a configuration value whose meaning
    changed) is printed once as ``markovfork: note: ...`` on stderr; other warnings as before."""
    import warnings

    from markovfork.plumbing.notes import ConfigNote  # imports nothing (start-up)

    with warnings.catch_warnings():
        warnings.simplefilter("default", ConfigNote)
        show = warnings.showwarning

        def one_line(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ConfigNote):
                click.echo(f"markovfork: note: {message}", err=True)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = one_line
        yield


def describe_os_error(exc: OSError) -> str:
    """One line: the path(s) and the reason, e.g. ``cannot write runs/a.csv: No space left on device``."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    paths = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    return f"{paths}: {reason}"


class _LazyCommands(_OneLineErrors):
    """Imports a command's module only when that command runs (or when --help lists them all),
    so ``markovfork simulate`` does not pay for the bridge, plotting or table libraries."""

    def list_commands(self, ctx):
        from markovfork.cli.commands import COMMAND_MODULES

        return sorted(COMMAND_MODULES)

    def format_commands(self, ctx, formatter):
        """The command list of ``--help`` from ``COMMAND_HELP``: no command module is imported."""
        from markovfork.cli.commands import COMMAND_HELP

        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section("Commands"):
            formatter.write_dl([(name, click.Command(name, help=COMMAND_HELP[name]).get_short_help_str(limit))
                                for name in names])

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

