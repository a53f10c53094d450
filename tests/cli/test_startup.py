"""What a short command imports (start-up time, ``docs/performance.md``): ``tmc --json`` and the
text summary need neither Polars nor matplotlib nor ``scipy.linalg``; ``--out`` writes the tables
through Polars."""

import json
import subprocess
import sys

CODE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("polars", "matplotlib", "scipy"))), file=sys.stderr))
from markovfork.cli import main
sys.argv = ["markovfork", *{args!r}]
main()
"""


def _imported(args, cwd) -> set[str]:
    done = subprocess.run([sys.executable, "-c", CODE.format(args=args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


SMALL = ["tmc", "--iterations", "5", "--instances", "5", "--methods", "reinforce,kl-tilt", "--no-progress"]


def test_tmc_json_and_summary_import_no_polars_matplotlib_or_scipy_linalg(tmp_path):
    for extra in (["--json"], []):
        modules = _imported([*SMALL, *extra], tmp_path)
        assert not {m for m in modules if m.split(".")[0] in ("polars", "matplotlib")}, (extra, modules)
        assert "scipy.linalg" not in modules, (extra, modules)


def test_tmc_out_writes_tables_through_polars(tmp_path):
    modules = _imported([*SMALL, "--out", str(tmp_path / "run")], tmp_path)
    assert "polars" in modules and "matplotlib.figure" in modules
    assert (tmp_path / "run.parquet").exists() and (tmp_path / "run_paths.png").exists()


def test_simulate_json_imports_no_polars(tmp_path):
    modules = _imported(["simulate", "--epochs", "2", "--json", "--no-progress"], tmp_path)
    assert not {m for m in modules if m.split(".")[0] in ("polars", "matplotlib")}, modules
    assert "scipy.linalg" not in modules, modules
