"""The options every command shares, one definition each, and their parsers.

One vocabulary: a LIST is ``a,b,c`` or the inclusive range ``START:STOP:STEP`` and never repeats
a value; ``--out PREFIX`` is a file prefix (``PREFIX.parquet``, ``PREFIX.csv``,
``PREFIX_<name>.png``), ``--out-dir DIR`` a folder; ``--seed N`` an integer in [0, 2^64 - 1];
``--k LIST`` the k values of pass@k; ``--problems N`` a count; ``--json`` prints JSON,
``--no-progress`` hides the progress bar; ``--workers N`` and ``--scheduler`` choose where runs go.
Only click is imported here, so a command pays for nothing it does not use.
"""

from __future__ import annotations

import json
import math
import sys

import click

MAX_LIST_VALUES = 10_000  # values in one LIST option
MAX_RUNS = 10_000  # runs in one sweep (the product of the list lengths)
SEED_MAX = 2**64 - 1


# ----------------------------------------------------------------------------- lists
def parse_values(text: str, kind: type, option: str) -> list:
    """A LIST: comma-separated items, each a value or an inclusive range ``START:STOP:STEP``
    (``"0:1:0.1"`` is 11 values, ``"1,2:8:2"`` is 1, 2, 4, 6, 8); at most ``MAX_LIST_VALUES``
    finite values, none repeated."""
    example = "0,0.5,1 or 0:1:0.1" if kind is float else "1,2,3 or 1,2:8:2"

    def bad(why: str) -> click.BadParameter:
        return click.BadParameter(f"{why}, got {text!r}", param_hint=f"'{option}'")

    values = []
    try:
        for item in text.split(","):
            if ":" not in item:
                values.append(kind(item))
                continue
            start, stop, step = (kind(x) for x in item.split(":"))
            if not all(math.isfinite(x) for x in (start, stop, step)):
                raise bad("range bounds and step must be finite")
            if not step > 0 or stop < start:
                raise ValueError
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            if len(values) + n > MAX_LIST_VALUES:
                raise bad(f"the list has {len(values) + n} values, more than the maximum {MAX_LIST_VALUES}")
            more = [start + i * step for i in range(n)]
            values += [round(v, 12) for v in more] if kind is float else more  # 0.1 * 3 is 0.30000000000000004
        if len(values) > MAX_LIST_VALUES:
            raise bad(f"the list has {len(values)} values, more than the maximum {MAX_LIST_VALUES}")
        if not all(math.isfinite(v) for v in values):
            raise bad("values must be finite")
        if kind is int and any(not -2**63 <= v <= SEED_MAX for v in values):  # no count, k or seed is larger
            raise bad(f"values must be in [-2^63, 2^64 - 1], got {next(v for v in values if not -2**63 <= v <= SEED_MAX)}")
    except (ValueError, OverflowError):
        raise bad(f"expected a comma-separated list or START:STOP:STEP (STEP > 0, STOP >= START) such as {example}") from None
    return refuse_repeats(values, text, option)


def refuse_repeats(values: list, text: str, option: str) -> list:
    """``values`` unchanged, or a usage error naming the first value given twice."""
    from markovfork.plumbing.checks import first_repeat

    v = first_repeat(values)
    if v is not None:
        shown = f"{v:g}" if isinstance(v, float) else str(v)
        raise click.BadParameter(f"{shown} is given twice, got {text!r}; give each value once", param_hint=f"'{option}'")
    return values


def list_option(kind: type, option: str, low=None, high=None):
    """A click callback: the LIST as values of ``kind``, each >= ``low`` and <= ``high`` when given."""
    def callback(ctx, param, text):
        if text is None:
            return None
        values = parse_values(text, kind, option)
        if low is not None and min(values) < low:
            bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise click.BadParameter(f"values must be {bounds}, got {min(values):g}", param_hint=f"'{option}'")
        if high is not None and max(values) > high:
            bounds = f"in [{low}, {high}]" if low is not None else f"<= {high}"
            raise click.BadParameter(f"values must be {bounds}, got {max(values):g}", param_hint=f"'{option}'")
        return values

    callback.kind = kind
    return callback


def choice_list(choices, option: str, what: str, more: str = ""):
    """A click callback: ``"a,b"`` as the list of its values, each one of ``choices`` (``more``: what
    else the option takes, for the error), none repeated."""
    def callback(ctx, param, text):
        if text is None:
            return None
        values = [x.strip() for x in text.split(",")]
        bad = [x for x in values if x not in choices]
        if bad:
            raise click.BadParameter(f"unknown {what} {bad[0]!r} (choose from {', '.join(choices)}{', ' + more if more else ''})",
                                     param_hint=f"'{option}'")
        return refuse_repeats(values, text, option)

    callback.choices = tuple(choices)
    return callback


def parse_k(ctx, param, text):
    """``--k LIST``: k values of pass@k, each >= 1, sorted."""
    if text is None:
        return None
    k = parse_values(text, int, "--k")
    if any(x < 1 for x in k):
        raise click.BadParameter(f"every k must be >= 1, got {text!r}", param_hint="'--k'")
    return sorted(k)


def k_option(default=None, help="k values of pass@k, e.g. 1,4,16,64 or 1:8:1.  [default: 1,2,4,...,64]"):
    return click.option("--k", "k", callback=parse_k, default=default, metavar="LIST", help=help)


def check_runs(*lists) -> None:
    """A sweep's grid (the product of the given lists' lengths) is at most ``MAX_RUNS`` runs."""
    n_runs = math.prod(len(x) for x in lists if x is not None)
    if n_runs > MAX_RUNS:
        raise click.UsageError(f"the grid has {n_runs} runs, more than the maximum {MAX_RUNS} (split the sweep)")


# ----------------------------------------------------------------------------- options that need another
class Needs:
    """``option`` applies only when ``ok(params)`` holds, ``params`` being the command's values (None
    where an option was not given); ``requirement`` and ``remedy`` word the refusal
    ``--clip applies only with --method ppo: give both or drop it``. ``governing``: the parameter
    names ``ok`` reads; when a ``--config`` file is given and none of them is on the command line,
    the file may supply them and the rule is not checked here (the library checks the config)."""

    def __init__(self, option: str, requirement: str, ok, governing=(), remedy: str = "give both or drop it"):
        self.option, self.requirement, self.ok, self.governing = option, requirement, ok, tuple(governing)
        self.remedy = remedy

    def param(self, command: click.Command) -> click.Parameter:
        option = self.option.split("/")[0]  # a boolean flag's pair, "--dead-ends/--full", is one parameter
        for p in command.params:
            if option in getattr(p, "opts", ()) or option in getattr(p, "secondary_opts", ()):
                return p
        raise LookupError(f"{command.name} has no option {self.option}")


GIVEN = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user gave the parameter ``name`` (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in GIVEN


def needs(*rules: Needs):
    """The one mechanism for options that only apply with another: a decorator (placed right under
    ``@main.command``) that refuses, before the command runs, an option the user gave whose rule
    does not hold. The rules stay on the command (``command.needs``) for the help walk and tests."""
    import functools

    def wrap(func):
        @functools.wraps(func)
        def checked(*args, **params):
            ctx = click.get_current_context()
            check_needs(ctx, rules, params)
            return func(*args, **params)

        checked.needs = rules
        return checked

    return wrap


def check_needs(ctx: click.Context, rules, params: dict) -> None:
    config = next((params[n] for n in ("config_file", "config") if params.get(n) is not None), None)
    for rule in rules:
        p = rule.param(ctx.command)
        if not given(ctx, p.name):
            continue
        if config is not None and rule.governing and not any(given(ctx, g) for g in rule.governing):
            continue  # the --config file may set what the rule reads
        if not rule.ok(params):
            raise click.UsageError(f"{rule.option} applies only {rule.requirement}: {rule.remedy}")


def has(value, items, default=()) -> bool:
    """One of ``items`` among a LIST option's values (``default`` when the option was not given)."""
    return any(i in (default if value is None else value) for i in items)


def without_scheduler(option: str = "--workers") -> Needs:
    """``--workers`` sizes the local process pool: with ``--scheduler`` (Dask) it would be ignored."""
    return Needs(option, "with the local process pool, not with --scheduler", lambda p: p["scheduler"] is None,
                 remedy="drop one of them")


def check_size(option: str, value, n_bytes: int, what: str) -> None:
    """The one size check of an option, before anything is allocated: a usage error naming
    ``option`` and the estimate when ``n_bytes`` (of ``what``) exceed the memory here
    (:func:`markovfork.plumbing.checks.fits_in_memory`)."""
    from markovfork.plumbing.checks import fits_in_memory

    if isinstance(value, int) and value > 0:
        fits_in_memory(option, value, n_bytes, what)


# ----------------------------------------------------------------------------- scalars
def _parse_seed(ctx, param, value):
    if value is None:
        return None
    try:
        seed = int(value)
        ok = str(value).strip().lstrip("+").isdigit() and 0 <= seed <= SEED_MAX
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise click.BadParameter(f"expected an integer in [0, 2^64 - 1], got {value!r}", param_hint=f"'{param.opts[0]}'")
    return seed


def seed_option(help="Seed of every random draw.", default=None, show_default=False):
    """``--seed N``: one validator and one error format for every command."""
    return click.option("--seed", type=str, callback=_parse_seed, default=default, show_default=show_default, metavar="N",
                        help=help + ("" if show_default or default is None else f"  [default: {default}]"))


def _parse_workers(ctx, param, value):
    if value is not None and value < 1:
        raise click.BadParameter(f"workers must be >= 1, got {value}", param_hint="'--workers'")
    return value


def workers_option(help="Worker processes.  [default: all cores]"):
    return click.option("--workers", type=int, callback=_parse_workers, default=None, metavar="N", help=help)


def _parse_scheduler(ctx, param, text):
    from markovfork.plumbing.executors import parse_scheduler

    try:
        parse_scheduler(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--scheduler'") from None
    return text


scheduler_option = click.option(
    "--scheduler", callback=_parse_scheduler, default=None, metavar="local:N|tcp://HOST:PORT",
    help="Run on Dask: local:N starts a LocalCluster of N workers, tcp://HOST:PORT uses a running "
         "scheduler (needs markovfork[dask]; docs/scaling.md).  [default: the local process pool]")


def parse_spread_at(ctx, param, text):
    """``first``, ``fork`` or a depth ``DEPTH`` as the fields ``at`` (and ``depth``) of a Spread."""
    if text is None:
        return None
    from markovfork.model.spread import Spread

    try:
        return Spread.parse_at(text)
    except ValueError:
        raise click.BadParameter(f"expected first, fork or a depth >= 0, got {text!r}", param_hint="'--spread-at'") from None


def spread_at_option(default: str):
    return click.option("--spread-at", callback=parse_spread_at, default=None, metavar="first|fork|DEPTH",
                        help="Spread node: the first node with a choice, the first decision fork, or the node DEPTH "
                             f"steps below the start.  [default: {default}]")


# ----------------------------------------------------------------------------- outputs and printing
def out_option(help: str, required: bool = False):
    """``--out PREFIX``: ``help`` says which files (``PREFIX.parquet``, ``PREFIX_<name>.png``, ...)."""
    return click.option("--out", "out", type=str, default=None, required=required, metavar="PREFIX", help=help)


def renamed_option(new: str, old: str, dest: str, note: str = "", **kwargs):
    """The option ``new`` (``dest`` in the command) with its old spelling ``old`` kept as a hidden
    alias that still works and prints a one-line deprecation note on stderr."""
    alias_dest = dest + "_old_spelling"

    def alias(ctx, param, value):
        if value is not None:
            click.echo(f"markovfork: {old} is deprecated, use {new}{note}", err=True)
        return value

    def wrap(func):
        import functools

        @functools.wraps(func)
        def merged(*args, **params):
            old_value = params.pop(alias_dest)
            if old_value is not None:
                if params[dest] not in (None, kwargs.get("default")):
                    raise click.UsageError(f"{old} and {new} are the same option; give one")
                params[dest] = old_value
            return func(*args, **params)

        alias_kwargs = {key: v for key, v in kwargs.items() if key in ("type", "callback")}
        merged = click.option(old, alias_dest, default=None, hidden=True, expose_value=True,
                              callback=_chain(alias_kwargs.pop("callback", None), alias), **alias_kwargs)(merged)
        return click.option(new, dest, **kwargs)(merged)

    return wrap


def _chain(first, second):
    if first is None:
        return second
    return lambda ctx, param, value: second(ctx, param, first(ctx, param, value))


def out_dir_option(help: str, default=None, show_default: bool = False):
    """``--out-dir DIR`` (a folder; the command receives ``out_dir``), formerly ``--out DIR``."""
    return renamed_option("--out-dir", "--out", "out_dir", " (--out is a file prefix elsewhere)",
                          type=click.Path(file_okay=False), default=default, show_default=show_default,
                          metavar="DIR", help=help)


def json_option(help="Print the result as JSON instead of the text summary."):
    return click.option("--json", "as_json", is_flag=True, help=help)


no_progress_option = click.option("--no-progress", is_flag=True,
                                  help="No progress bar (it is shown only on a terminal anyway).")
no_bar_option = click.option("--no-progress", is_flag=True,
                             help="No progress bar: this command shows none (the option is accepted everywhere).")


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr when ``enabled`` and stderr is a terminal; else a no-op (tqdm not imported)."""
    if not (enabled and sys.stderr.isatty()):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def figure_path(prefix, name: str):
    """``PREFIX_<name>.png``: where the figure ``name`` of an ``--out PREFIX`` goes."""
    return prefix.with_name(f"{prefix.name}_{name}.png")


def planned_outputs(out, figure_names=(), inputs=()):
    """The --out prefix (None without --out), checked with every file it will write (the table and
    ``PREFIX_<name>.png`` per figure name) before anything is computed; none of them may be one of
    the command's ``inputs``."""
    if out is None:
        return None
    from markovfork.plumbing.io import check_not_inputs, check_outputs, output_prefix, table_paths

    prefix = output_prefix(out)
    outputs = [*table_paths(prefix), *(figure_path(prefix, name) for name in figure_names)]
    check_outputs(outputs)
    check_not_inputs(outputs, [i for i in inputs if i is not None])
    return prefix


def write_results(prefix, table, figures: dict) -> list[str]:
    """The table and the figures (name -> matplotlib figure), written as one output set."""
    from markovfork.plumbing.io import figure_writer, table_writers, write_outputs

    writers = {**table_writers(table, prefix), **{figure_path(prefix, n): figure_writer(f) for n, f in figures.items()}}
    return [str(p) for p in write_outputs(writers)]


def echo_json(doc, **dumps) -> None:
    """Print ``doc`` as indented JSON, non-finite floats as null (strict JSON)."""
    from markovfork.plumbing.io import json_safe

    click.echo(json.dumps(json_safe(doc), indent=2, allow_nan=False, **dumps))


def echo_written(paths) -> None:
    if paths:
        click.echo("wrote " + ", ".join(paths))
