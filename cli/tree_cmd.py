"""``markovfork tree``: build a fork tree, a TMC or a JSON tree and describe it.

The tree options (:func:`tree_options`, :func:`build_tree`) are shared with
``markovfork coverage``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from markovfork.cli import main
from markovfork.model.tree_summary import node_table, summarize_tree
from markovfork.tasks import TMC, fork_tree, tmc_chain
from markovfork.plumbing.io import check_outputs, output_prefix, table_paths, table_writers, write_outputs
from markovfork.model.tree import Tree, load_tree, tree_to_json


def _parse_high_edge(text: str) -> tuple[tuple[int, int], list[int]]:
    """``"LAYER,STATE:NEXT[,NEXT...]"`` -> ((layer, state), [next, ...])."""
    try:
        row, targets = text.split(":")
        layer, state = (int(x) for x in row.split(","))
        return (layer, state), [int(t) for t in targets.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"expected LAYER,STATE:NEXT[,NEXT...] such as 1,1:1, got {text!r}", param_hint="'--high-edge'"
        ) from None


def tree_options(func):
    """Click options that describe a tree: a generated fork tree (default), ``--tmc`` or ``--from-json``."""
    options = [
        click.option("--from-json", "from_json", type=click.Path(dir_okay=False), default=None,
                     help="Read the tree from a JSON file (see docs/model.md for the format)."),
        click.option("--tmc", is_flag=True, help="Build the layered multi-task chain (TMC) instead of a fork tree."),
        click.option("--depth", type=int, default=6, show_default=True, help="Fork tree: steps from root to leaf."),
        click.option("--branching", type=int, default=2, show_default=True, help="Fork tree: children per internal node."),
        click.option("--forks", type=int, default=1, show_default=True,
                     help="Fork tree: number of fork nodes (in simulate, --forks counts decision points in the data)."),
        click.option("--placement", type=click.Choice(["top", "random", "bottom"]), default="top", show_default=True,
                     help="Fork tree: where the forks sit (breadth-first first, random, last)."),
        click.option("--valid-branches", type=int, default=1, show_default=True,
                     help="Fork tree: branches of a fork that are valid for a problem."),
        click.option("--easy-prob", type=float, default=None,
                     help="Fork tree: probability of the one easy child per node (default: uniform)."),
        click.option("--dead-ends/--full", default=False, show_default=True,
                     help="Fork tree: decipherable nodes have one continuing child, the others are leaves."),
        click.option("--layers", type=int, default=4, show_default=True, help="TMC: number of layers L."),
        click.option("--m0", type=int, default=2, show_default=True, help="TMC: states in layer 0."),
        click.option("--m", "m", type=int, default=2, show_default=True, help="TMC: states in each later layer."),
        click.option("--c", "c", type=int, default=1, show_default=True, help="TMC: high edges per row."),
        click.option("--high-weight", type=float, default=None, help="TMC: weight of a high edge (default 1/C)."),
        click.option("--low-weight", type=float, default=0.1, show_default=True, help="TMC: weight of a low edge."),
        click.option("--high-edge", "high_edge", multiple=True, metavar="L,S:T[,T]",
                     help="TMC: explicit high set of row (layer L, state S); repeatable. Other rows are drawn."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every random draw."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass(frozen=True)
class TreeChoice:
    """The tree built from the options, with its TMC description when it is one."""

    tree: Tree
    source: str  # "fork", "tmc" or "json"
    tmc: TMC | None


def build_tree(opts: dict) -> TreeChoice:
    """Build the tree the :func:`tree_options` values describe."""
    if opts["tmc"] and opts["from_json"]:
        raise click.UsageError("--tmc and --from-json are mutually exclusive")
    if opts["from_json"]:
        return TreeChoice(load_tree(opts["from_json"]), "json", None)
    if opts["tmc"]:
        high = {}
        for text in opts["high_edge"]:
            row, targets = _parse_high_edge(text)
            if row in high:
                raise click.BadParameter(f"row {row[0]},{row[1]} is given twice ({row[0]},{row[1]}:"
                                         f"{','.join(map(str, high[row]))} and {text!r}); give each row once",
                                         param_hint="'--high-edge'")
            high[row] = targets
        tmc = tmc_chain(
            opts["layers"], opts["m0"], opts["m"], opts["c"], opts["high_weight"], opts["low_weight"], high,
            opts["seed"],
        )
        return TreeChoice(tmc.tree, "tmc", tmc)
    if opts["high_edge"]:
        raise click.UsageError("--high-edge needs --tmc")
    tree = fork_tree(
        opts["depth"], opts["branching"], opts["forks"], opts["placement"], opts["valid_branches"],
        opts["easy_prob"], opts["seed"], opts["dead_ends"],
    )
    return TreeChoice(tree, "fork", None)


TREE_OPTION_NAMES = (
    "from_json", "tmc", "depth", "branching", "forks", "placement", "valid_branches", "easy_prob", "dead_ends",
    "layers", "m0", "m", "c", "high_weight", "low_weight", "high_edge", "seed",
)


def split_tree_options(kwargs: dict) -> tuple[dict, dict]:
    """(tree options, the rest) from a command's keyword arguments."""
    tree_opts = {name: kwargs.pop(name) for name in TREE_OPTION_NAMES}
    return tree_opts, kwargs


def describe(choice: TreeChoice) -> dict:
    """Summary counts, plus each task's valid paths for a TMC."""
    out = {"source": choice.source, **summarize_tree(choice.tree).to_json()}
    if choice.tmc is not None:
        tasks = []
        for i, task in enumerate(choice.tmc.tasks):
            paths = choice.tmc.task_paths(i)
            tasks.append({
                "task": i, "start": task.start, "end": task.end, "valid_paths": int(paths.leaf.size),
                "easy_valid_paths": int(paths.easy.sum()),
                "easy_path_expected_correctness": [round(float(x), 6) for x in paths.expected_correctness[paths.easy]],
            })
        out["tasks"] = tasks
    return out


def _lines(info: dict) -> list[str]:
    lines = [
        f"tree ({info['source']}): {info['n_nodes']} nodes, {info['n_internal']} internal "
        f"({info['n_forks']} forks, {info['n_decipherable']} decipherable), {info['n_leaves']} leaves",
        f"depth {info['depth']} (shortest path {info['min_leaf_depth']}), max branching {info['max_branching']}",
        f"root-to-leaf paths {info['n_leaves']}, all-easy paths {info['n_easy_paths']}, "
        f"most forks on one path {info['max_forks_on_path']}",
    ]
    for t in info.get("tasks", []):
        lines.append(
            f"task {t['task']} ({t['start']} -> {t['end']}): {t['valid_paths']} valid paths, "
            f"{t['easy_valid_paths']} easy; easy-path expected correctness {t['easy_path_expected_correctness']}"
        )
    return lines


@main.command("tree")
@tree_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="PREFIX",
              help="Write the per-node table to PREFIX.parquet and PREFIX.csv.")
@click.option("--export", "export", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the tree as JSON (readable by --from-json).")
def tree_command(as_json, out, export, **kwargs):
    """Describe a generated fork tree, a TMC (--tmc) or a JSON tree (--from-json)."""
    tree_opts, _ = split_tree_options(kwargs)
    prefix = output_prefix(out) if out is not None else None
    export = output_prefix(export, "--export") if export is not None else None
    check_outputs([*(table_paths(prefix) if prefix else ()), *([export] if export else ())])
    choice = build_tree(tree_opts)
    info = describe(choice)
    writers = {}
    if prefix is not None:
        writers.update(table_writers(node_table(choice.tree), prefix))
    if export is not None:
        text = tree_to_json(choice.tree)  # any depth (json.dumps recurses once per level)
        writers[export] = lambda tmp: Path(tmp).write_text(text)
    write_outputs(writers)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo("\n".join(_lines(info)))
