"""The results-table contract of docs/results-schema.md, from the user's side: a table written by
hand (every value literal below, only the columns that page marks as required) is fitted by
``markovfork fit``; breaking one rule of the page is refused in one line; a fit the data cannot
support says so in a warning."""

import json

import pytest
from click.testing import CliRunner

from markovfork.cli import main

# engine,rho,diversity,seed,epoch,k,pass_at_k_post,arms,depth,n_samples,n_test: a "my own stack"
# evaluation of three SFT mixes (rho 0, 0.5, 1) after 0, 1 and 2 epochs, at k = 1, 2, 4 of 4 samples
HEADER = "engine,rho,diversity,seed,epoch,k,pass_at_k_post,arms,depth,n_samples,n_test"
ROWS = """
mystack,0.0,data,0,0,1,0.35,2,3,4,50
mystack,0.0,data,0,0,2,0.56,2,3,4,50
mystack,0.0,data,0,0,4,0.78,2,3,4,50
mystack,0.0,data,0,1,1,0.52,2,3,4,50
mystack,0.0,data,0,1,2,0.70,2,3,4,50
mystack,0.0,data,0,1,4,0.84,2,3,4,50
mystack,0.0,data,0,2,1,0.66,2,3,4,50
mystack,0.0,data,0,2,2,0.78,2,3,4,50
mystack,0.0,data,0,2,4,0.86,2,3,4,50
mystack,0.5,data,0,0,1,0.35,2,3,4,50
mystack,0.5,data,0,0,2,0.56,2,3,4,50
mystack,0.5,data,0,0,4,0.78,2,3,4,50
mystack,0.5,data,0,1,1,0.44,2,3,4,50
mystack,0.5,data,0,1,2,0.64,2,3,4,50
mystack,0.5,data,0,1,4,0.80,2,3,4,50
mystack,0.5,data,0,2,1,0.52,2,3,4,50
mystack,0.5,data,0,2,2,0.68,2,3,4,50
mystack,0.5,data,0,2,4,0.80,2,3,4,50
mystack,1.0,data,0,0,1,0.35,2,3,4,50
mystack,1.0,data,0,0,2,0.56,2,3,4,50
mystack,1.0,data,0,0,4,0.78,2,3,4,50
mystack,1.0,data,0,1,1,0.40,2,3,4,50
mystack,1.0,data,0,1,2,0.58,2,3,4,50
mystack,1.0,data,0,1,4,0.72,2,3,4,50
mystack,1.0,data,0,2,1,0.44,2,3,4,50
mystack,1.0,data,0,2,2,0.58,2,3,4,50
mystack,1.0,data,0,2,4,0.66,2,3,4,50
""".strip().splitlines()
CONFIG = "[sft]\nn_problems = 40\n"  # the SFT set size (the table has no column for it)


def _write(path, rows):
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _fit(tmp_path, table, *more):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    held_out = "--predict-rho" in more or "--train-until-epoch" in more  # --no-fork-baseline needs one
    return CliRunner().invoke(main, ["fit", str(table), "--config", str(tmp_path / "cfg.toml"),
                                     *(["--no-fork-baseline"] if held_out else []), *map(str, more)])


def test_a_table_written_by_hand_from_the_schema_page_is_fitted(tmp_path):
    table = _write(tmp_path / "mine.csv", ROWS)
    r = _fit(tmp_path, table, "--predict-rho", "0.5", "--save-params", tmp_path / "fit.json", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["parameters"]) >= {"lr", "base_step_accuracy", "memorisation", "capacity"}
    assert doc["held_out"]["held_rhos"] == [0.5] and doc["held_out"]["errors"]["simulator"]["cells"] == 2 * 3
    saved = json.loads((tmp_path / "fit.json").read_text())
    # exactly the grid of the rows fitted: rho 0.5 was held out, so it is not covered
    assert saved["fitted"] == {"rhos": [0.0, 1.0], "diversities": ["data"], "epochs": [0, 1, 2], "ks": [1, 2, 4]}


@pytest.mark.parametrize(("rows", "named"), [
    ([r.replace(",2,3,4,50", ",2,3,2,50") for r in ROWS], "k 4 exceeds n_samples 2"),  # k <= n_samples
    ([r.replace("mystack,0.5,", "mystack,1.5,") for r in ROWS], "column rho"),  # rho in [0, 1]
    ([*ROWS, ROWS[5].replace("0.84", "0.90")], "conflicting rows"),  # one row per key
    ([r.replace(",2,3,4,50", ",2,,4,50") for r in ROWS], "column depth"),  # required: no null
])
def test_each_rule_of_the_page_is_enforced_in_one_line(tmp_path, rows, named):
    r = _fit(tmp_path, _write(tmp_path / "bad.csv", rows))
    assert r.exit_code == 2 and r.output.count("\n") == 1 and named in r.output, r.output


def test_a_fit_the_data_cannot_support_warns_in_one_line(tmp_path):
    """One rho: nothing separates the memorisation from the shared learning; the fit still ends,
    with a warning on stderr and in --json."""
    one_rho = [r for r in ROWS if r.startswith("mystack,1.0,")]
    r = _fit(tmp_path, _write(tmp_path / "one.csv", one_rho), "--json")
    assert r.exit_code == 0, r.output
    warnings = json.loads(r.stdout)["warnings"]
    assert warnings, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and warnings[0] in lines[0]
