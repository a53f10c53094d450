"""``bridge sweep``: one bridge run per (rho, seed) in its own folder, a shared base per seed, the
gathered table, resume, GPU resources on Dask, one-line errors for bad lists.

The reference for the rows is an ordinary ``bridge run`` of the same configuration (the session's
tiny run, seed 0, rhos 0, 0.5 and 1): every random stream derives from the seed and the SFT run's
name, so the sweep's seed-0 rows must be that run's rows for rho 0 and 1, bit for bit.
"""

import shutil
import sys
import time
import types

import polars as pl
import pytest
import torch
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from markovfork.cli import main
from markovfork.llm_bridge import sweep as bridge_sweep
from markovfork.llm_bridge.config import load_config

RHOS, SEEDS = [0.0, 1.0], [0, 1]
NAMES = ["rho0-seed0", "rho1-seed0", "rho0-seed1", "rho1-seed1"]  # (seed, rho) order


def _sweep(config, out, *extra):
    return CliRunner().invoke(main, ["bridge", "sweep", "--config", str(config), "--rho", "0,1", "--seeds", "0,1",
                                     "--out", str(out), *extra])


@pytest.fixture(scope="module")
def swept(tiny_config, tmp_path_factory):
    """The tiny sweep, 2 rhos x 2 seeds, on the local pool of 2 processes."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    t0 = time.perf_counter()
    r = _sweep(tiny_config, out, "--workers", "2")
    assert r.exit_code == 0, r.output
    print(f"tiny sweep: {time.perf_counter() - t0:.1f} s")
    return out


def _table(path):
    return pl.read_parquet(path / "bridge_results.parquet")


def test_one_folder_per_run_and_the_gathered_table_is_their_concatenation(swept):
    assert sorted(p.name for p in swept.iterdir() if p.is_dir()) == sorted(NAMES + ["base-seed0", "base-seed1"])
    for name in NAMES:
        run = _table(swept / name)
        rho, seed = (0.0 if name.startswith("rho0") else 1.0), int(name[-1])
        assert set(run["rho"]) == {rho} and set(run["seed"]) == {seed}
        assert sorted(set(run["epoch"])) == [0, 1, 2]
    gathered = _table(swept)
    assert_frame_equal(gathered, pl.concat([_table(swept / n) for n in NAMES]))
    assert pl.read_csv(swept / "bridge_results.csv").height == gathered.height
    assert gathered.select("rho", "seed", "diversity", "epoch", "k").is_duplicated().sum() == 0


def test_rows_are_those_of_a_bridge_run_of_the_same_seed(swept, tiny_run):
    run = _table(tiny_run).filter(pl.col("rho").is_in(RHOS))
    assert_frame_equal(_table(swept).filter(pl.col("seed") == 0), run)


def test_the_base_is_trained_once_per_seed_and_shared(swept):
    import json

    for s in SEEDS:
        shared = swept / f"base-seed{s}"
        assert (shared / "base" / "epoch-002" / "trainer_state.pt").is_file()
        assert not (shared / "sft").exists() and not (shared / "bridge_results.parquet").exists()
        for r in (0, 1):
            run = swept / f"rho{r}-seed{s}"
            assert (run / "base").is_symlink() and (run / "base").resolve() == (shared / "base").resolve()
            assert (run / "eval" / "base.json").read_bytes() == (shared / "eval" / "base.json").read_bytes()
            assert json.loads((run / "config.json").read_text())["sft"]["rhos"] == [float(r)]
    losses = [json.loads((swept / f"base-seed{s}" / "summary.json").read_text())["base_epoch_losses"] for s in SEEDS]
    assert losses[0] != losses[1]


def test_a_rerun_resumes(swept, tiny_config, tmp_path, monkeypatch):
    """A finished sweep is read back without loading a model; an interrupted run (its last SFT
    epoch, evaluation and table gone) resumes from its epoch 1, the others untouched, and the
    table is the same bit for bit; without --resume the folder is refused."""
    out = tmp_path / "out"
    shutil.copytree(swept, out, symlinks=True)
    with monkeypatch.context() as m:
        m.setattr("markovfork.llm_bridge.run.run_bridge", lambda *a, **k: pytest.fail("retrained"))
        r = _sweep(tiny_config, out, "--resume")
    assert r.exit_code == 0, r.output
    assert_frame_equal(_table(out), _table(swept))

    cut = out / "rho1-seed1"
    for p in [cut / "bridge_results.parquet", cut / "bridge_results.csv", cut / "eval" / "data-rho1-epoch002.json"]:
        p.unlink()
    shutil.rmtree(cut / "sft" / "data-rho1" / "epoch-002")
    (out / "bridge_results.parquet").unlink()
    stamp = {p: p.stat().st_mtime_ns for p in [cut / "sft" / "data-rho1" / "epoch-001" / "trainer_state.pt",
                                               out / "base-seed1" / "base" / "epoch-002" / "trainer_state.pt",
                                               *(out / n / "summary.json" for n in NAMES[:3])]}
    assert _sweep(tiny_config, out).exit_code == 2
    r = _sweep(tiny_config, out, "--resume", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    assert (cut / "sft" / "data-rho1" / "epoch-002").is_dir()
    assert_frame_equal(_table(out), _table(swept))


def test_runs_ask_dask_for_one_gpu(swept, tiny_config, tmp_path, monkeypatch):
    """On a Dask scheduler every run asks for {"GPU": 1} (run_on_dask drops it when no worker
    advertises GPU), one run per task; here a stand-in for run_on_dask runs the tasks in this
    process."""
    seen = []

    def fake(fn, items, kind, value, progress=None, batch_size=None, resources=None):
        seen.append((kind, value, resources, batch_size, len(items)))
        return [fn(x) for x in items]

    monkeypatch.setitem(sys.modules, "markovfork.plumbing.dask_executor", types.SimpleNamespace(run_on_dask=fake))
    threads = torch.get_num_threads()
    try:
        table = bridge_sweep.run_sweep(load_config(tiny_config), [1.0], [0], tmp_path / "d",
                                       scheduler="tcp://127.0.0.1:1", log=lambda msg: None)
    finally:
        torch.set_num_threads(threads)
    assert seen == [("address", "tcp://127.0.0.1:1", {"GPU": 1}, 1, 1)]  # one rho: no shared base
    assert not (tmp_path / "d" / "rho1-seed0" / "base").is_symlink()
    assert_frame_equal(table, _table(swept / "rho1-seed0"))


def test_gpu_request():
    assert bridge_sweep.gpu_request(None) is None and bridge_sweep.gpu_request(None, 2) is None
    assert bridge_sweep.gpu_request("local:2") == {"GPU": 1}
    assert bridge_sweep.gpu_request("tcp://h:8786", 2) == {"GPU": 2}
    assert bridge_sweep.gpu_request("tcp://h:8786", 0) is None
    with pytest.raises(ValueError, match="--gpus-per-task must be an integer >= 0, got -1"):
        bridge_sweep.gpu_request("local:1", -1)


@pytest.mark.parametrize("args, message", [
    (["--rho", "0,2"], "--rho values must be in [0, 1], got 2.0 in '0,2'"),
    (["--rho", "0.5,0.5"], "--rho lists 0.5 twice"),
    (["--rho", "0,a"], "--rho must be a comma-separated list such as 0,0.5,1, got '0,a'"),
    (["--seeds", "0,x"], "--seeds must be a comma-separated list such as 0,1, got '0,x'"),
    (["--seeds", "-1"], "--seeds value must be an integer in [0,"),
    (["--seeds", ""], "--seeds must be a comma-separated list"),
    (["--workers", "0"], "--workers must be an integer >= 1, got 0"),
    (["--scheduler", "local:0"], "scheduler local:N needs N >= 1 workers"),
    (["--gpus-per-task", "-1", "--scheduler", "local:1"], "--gpus-per-task must be an integer >= 0, got -1"),
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler at tcp://127.0.0.1:1"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_config, tmp_path, args, message):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["bridge", "sweep", "--config", str(tiny_config), "--out", str(out), *args])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()  # the scheduler's case logs the plan first
    assert lines[-1].startswith("Error: ") and message in lines[-1], lines
    assert "Traceback" not in r.output and all(line.startswith("bridge sweep: ") for line in lines[:-1])
    assert not out.exists()


def test_dask_local_cluster_gives_the_local_pool_table(swept, tiny_config, tmp_path):
    """``scheduler="local:2"`` (a real LocalCluster, two worker processes): the same rows as the
    local pool's (one run: a cluster per phase costs seconds)."""
    pytest.importorskip("distributed")
    table = bridge_sweep.run_sweep(load_config(tiny_config), [0.0], [1], tmp_path / "dask", scheduler="local:2",
                                   log=lambda msg: None)
    assert_frame_equal(table, _table(swept / "rho0-seed1"))
    assert (tmp_path / "dask" / "rho0-seed1" / "base" / "epoch-002").is_dir()
