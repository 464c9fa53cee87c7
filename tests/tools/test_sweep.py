"""run_sweep: a grid × seeds on a LocalCluster and on a real `dask scheduler` + `dask worker`s,
a worker killed mid-sweep, resuming from the cache, the NetCDF, and bad input refused up front."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

from tools import cluster
from tools.base import ToolError
from tools.cluster import run_point
from tools.registry import TOOLS, run_tool, validate_args
from tools.sweep import SweepArgs, plan_sweep, sweep_from_question

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
GRID = {"sigma_o": [0.1, 0.3, 1.0], "sigma_b": [0.2, 0.5]}
SWEEP = {"tool": "run_3dvar_cycle", "grid": GRID, "seeds": 2}


def serial(tool: str, args: dict) -> dict:
    """One point computed here, without Dask: the reference for the sweep's numbers."""
    spec = TOOLS[tool]
    return run_point(spec.fn, spec.args, tool, validate_args(spec, args).model_dump(mode="json"), "/nonexistent")


@contextmanager
def dask_processes(tmp: Path, n_workers: int = 2):
    """A real `dask scheduler` and `dask worker`s (no nanny: a killed worker stays dead) on
    127.0.0.1 with free ports, stopped on exit whatever happens. Yields (address, worker processes)."""
    from distributed import Client

    env = os.environ | {"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    tmp.mkdir(parents=True, exist_ok=True)
    file = tmp / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(file)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.is_file() and time.monotonic() < deadline and procs[0].poll() is None:
            time.sleep(0.1)
        assert file.is_file(), f"the dask scheduler did not start (exit code {procs[0].poll()})"
        workers = [subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(file),
                                     "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(n_workers)]
        procs += workers
        address = json.loads(file.read_text())["address"]
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n_workers, timeout=90)
        yield address, workers
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """The scheduler address of a real two-worker cluster, shared by this module's tests."""
    with dask_processes(tmp_path_factory.mktemp("dask")) as (address, _):
        yield address


@pytest.fixture(scope="module")
def local_result(tmp_path_factory):
    """The reference sweep, on a LocalCluster the tool starts itself."""
    with dask.config.set({"scheduler-address": None}):
        return run_tool("run_sweep", SWEEP, workspace=tmp_path_factory.mktemp("local"))


def nothing_written(home: Path) -> bool:
    runs = home / "runs"
    return not (home / "sweep-cache").exists() and (not runs.exists() or not any(runs.iterdir()))


# ----------------------------------------------------------------------------- on Dask

def test_a_sweep_on_a_local_cluster_gives_the_points_numbers_and_the_best_setting(local_result):
    m = local_result.metrics
    assert (m["n_points"], m["n_failed"], m["n_computed"], m["n_cached"]) == (12, 0, 12, 0)
    assert m["scheduler"] == "local" and m["workers"] >= 1 and m["metric"] == "rmse_analysis"
    ds = xr.open_dataset(local_result.run_dir / "sweep.nc")
    for s_o in GRID["sigma_o"]:                       # every cell is the number of that very point
        for s_b in GRID["sigma_b"]:
            for seed in (0, 1):
                want = serial("run_3dvar_cycle", {"sigma_o": s_o, "sigma_b": s_b, "seed": seed})
                got = ds.sel(sigma_o=s_o, sigma_b=s_b, seed=seed)
                assert float(got["rmse_analysis"]) == want["rmse_analysis"]
                assert float(got["gain_first"]) == want["gain_first"]
    mean = ds["rmse_analysis"].mean("seed")
    i, j = np.unravel_index(int(np.argmin(mean.values)), mean.shape)
    s_o, s_b = GRID["sigma_o"][i], GRID["sigma_b"][j]
    assert m["best"] == f"sigma_o={s_o:g}, sigma_b={s_b:g}"
    assert m["best_rmse_analysis"] == pytest.approx(float(mean.min()))
    assert m["best_rmse_analysis_std"] == pytest.approx(float(ds["rmse_analysis"].std("seed")[i, j]))
    assert m["best"] in local_result.summary and "12 points" in local_result.summary
    # the gain on the observed component is σ_b²/(σ_b²+σ_o²) at the first step, whatever the seed
    gain = ds["gain_first"].isel(seed=0).drop_vars("seed")
    xr.testing.assert_allclose(gain, (ds.sigma_b**2 / (ds.sigma_b**2 + ds.sigma_o**2)).transpose(*gain.dims),
                               check_dim_order=False)


def test_the_netcdf_opens_with_xarray_with_one_dimension_per_swept_argument_and_seed(local_result):
    ds = xr.open_dataset(local_result.run_dir / "sweep.nc")
    assert dict(ds.sizes) == {"sigma_o": 3, "sigma_b": 2, "seed": 2}
    assert list(ds["rmse_analysis"].dims) == ["sigma_o", "sigma_b", "seed"]
    assert ds.sigma_o.values.tolist() == GRID["sigma_o"] and ds.seed.values.tolist() == [0, 1]
    assert {"rmse_analysis", "rmse_background", "failed"} <= set(ds.data_vars)
    assert int(ds["failed"].sum()) == 0 and np.isfinite(ds["rmse_analysis"]).all()
    assert ds.attrs["tool"] == "run_3dvar_cycle" and ds.attrs["main_metric"] == "rmse_analysis"
    assert local_result.files == [local_result.run_dir / "sweep.nc"]
    assert [p.name for p in local_result.figures] == ["sweep_heatmap.png"]
    assert local_result.figures[0].read_bytes()[:8] == PNG
    record = json.loads((local_result.run_dir / "args.json").read_text())
    assert record["grid"] == GRID and record["tool"] == "run_3dvar_cycle"


def test_a_real_dask_scheduler_and_workers_give_identical_numbers(external, local_result, tmp_path):
    with dask.config.set({"scheduler-address": external}):
        result = run_tool("run_sweep", SWEEP, workspace=tmp_path)
    assert result.metrics["scheduler"] == external and result.metrics["workers"] == 2
    assert external in result.summary
    ours, theirs = xr.open_dataset(result.run_dir / "sweep.nc"), xr.open_dataset(local_result.run_dir / "sweep.nc")
    xr.testing.assert_identical(ours.drop_attrs(), theirs.drop_attrs())
    assert result.metrics["best"] == local_result.metrics["best"]


def test_resuming_an_interrupted_sweep_computes_only_the_missing_points(external, tmp_path):
    sweep = {"tool": "run_origen_oscillator", "grid": {"sigma_o": [0.1, 0.2, 0.4], "n_cycles": [3, 6]},
             "seeds": 2}
    seen = []

    def interrupt(fraction: float, message: str) -> None:
        if re.match(r"\d+/12 points", message):
            seen.append(message)
            if len(seen) == 5:
                raise KeyboardInterrupt          # as Ctrl-C does

    with dask.config.set({"scheduler-address": external}):
        with pytest.raises(KeyboardInterrupt):
            run_tool("run_sweep", sweep, workspace=tmp_path, progress=interrupt)
        assert not any(p for p in (tmp_path / "runs").iterdir())     # no run record of the broken sweep
        assert len(cluster.PointCache(tmp_path / "sweep-cache" / "run_origen_oscillator")) == 5
        again = run_tool("run_sweep", sweep, workspace=tmp_path)
        assert (again.metrics["n_computed"], again.metrics["n_cached"], again.metrics["n_failed"]) == (7, 5, 0)
        third = run_tool("run_sweep", sweep, workspace=tmp_path)      # everything cached: no cluster at all
    assert (third.metrics["n_computed"], third.metrics["n_cached"], third.metrics["scheduler"]) == (0, 12, "none")
    ds = xr.open_dataset(again.run_dir / "sweep.nc")
    want = serial("run_origen_oscillator", {"sigma_o": 0.4, "n_cycles": 6, "seed": 1})
    assert float(ds["rmse_final"].sel(sigma_o=0.4, n_cycles=6, seed=1)) == want["rmse_final"]
    xr.testing.assert_identical(ds.drop_attrs(), xr.open_dataset(third.run_dir / "sweep.nc").drop_attrs())


def test_ctrl_c_on_the_command_line_keeps_the_finished_points_for_the_next_run(external, tmp_path):
    env = os.environ | {"DALAB_HOME": str(tmp_path), "DASK_SCHEDULER_ADDRESS": external, "PYTHONPATH": str(REPO)}
    sweep = {"tool": "run_origen_oscillator", "grid": {"sigma_o": [0.1, 0.2, 0.3, 0.4, 0.5], "n_cycles": [4, 8]},
             "seeds": 4}
    cli = subprocess.Popen([sys.executable, "-m", "assistant.cli", "tool", "run_sweep", f"tool={sweep['tool']}",
                            f"grid={json.dumps(sweep['grid'])}", "seeds=4"], env=env, cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "5/40 points" not in seen and cli.poll() is None:
        seen += cli.stderr.read(1)
    cli.send_signal(signal.SIGINT)
    rest = cli.stderr.read()
    assert cli.wait(timeout=30) == 130, seen + rest
    assert "interrupted (Ctrl-C)" in rest and "Traceback" not in rest
    assert not any((tmp_path / "runs").iterdir())
    done = len(cluster.PointCache(tmp_path / "sweep-cache" / "run_origen_oscillator"))
    assert 5 <= done < 40
    with dask.config.set({"scheduler-address": external}):
        again = run_tool("run_sweep", sweep, workspace=tmp_path)
    assert (again.metrics["n_cached"], again.metrics["n_computed"], again.metrics["n_failed"]) == (done, 40 - done, 0)


def test_a_worker_killed_mid_sweep_does_not_lose_the_sweep(tmp_path):
    sweep = {"tool": "run_origen_lorenz63", "grid": {"sigma_o": [0.5, 1.0, 2.0, 4.0], "n_cycles": [4, 8]},
             "fixed": {"n_steps": 300}, "seeds": 2}
    with dask_processes(tmp_path / "dask") as (address, workers):
        killed = []

        def kill_one(fraction: float, message: str) -> None:
            if re.match(r"\d+/16 points", message) and not killed:
                os.kill(workers[0].pid, signal.SIGKILL)     # kill -9: the worker's points in flight are lost
                killed.append(fraction)

        with dask.config.set({"scheduler-address": address}):
            result = run_tool("run_sweep", sweep, workspace=tmp_path / "home", progress=kill_one)
        assert workers[0].wait(timeout=10) == -signal.SIGKILL
        assert workers[1].poll() is None                           # the other one finished the sweep
    assert killed and killed[0] < 1.0
    assert (result.metrics["n_points"], result.metrics["n_failed"], result.metrics["n_computed"]) == (16, 0, 16)
    ds = xr.open_dataset(result.run_dir / "sweep.nc")
    assert np.isfinite(ds["rmse_final"]).all()
    want = serial("run_origen_lorenz63", {"sigma_o": 4.0, "n_cycles": 8, "n_steps": 300, "seed": 1})
    assert float(ds["rmse_final"].sel(sigma_o=4.0, n_cycles=8, seed=1)) == want["rmse_final"]


def test_the_cli_takes_json_grids_honours_dask_scheduler_address_and_shows_progress(external, tmp_path):
    env = os.environ | {"DALAB_HOME": str(tmp_path), "DASK_SCHEDULER_ADDRESS": external, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "tool", "run_sweep", "tool=run_3dvar_cycle",
                          'grid={"sigma_o": [0.2, 0.4], "obs_pattern": ["x1", "alternating"]}',
                          'fixed={"n_steps": 50}', "--json"], env=env, capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["metrics"]["scheduler"] == external and result["metrics"]["n_points"] == 4
    assert result["args"]["grid"] == {"sigma_o": [0.2, 0.4], "obs_pattern": ["x1", "alternating"]}
    assert "4/4 points" in out.stderr and "100%" in out.stderr
    ds = xr.open_dataset(Path(result["run_dir"]) / "sweep.nc")
    assert ds.obs_pattern.values.tolist() == ["x1", "alternating"]


def test_a_metric_the_tool_does_not_report_is_refused_naming_the_ones_it_does(external, tmp_path):
    with dask.config.set({"scheduler-address": external}), pytest.raises(ToolError, match="'rmse_a' is not reported "
                                                                         "by run_3dvar_cycle.*rmse_analysis"):
        run_tool("run_sweep", {"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.2, 0.4]}, "metric": "rmse_a"},
                 workspace=tmp_path)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_points_a_tool_refuses_while_running_are_reported_as_failed_not_fatal(external, tmp_path):
    sweep = {"tool": "simulate_atmosphere", "grid": {"dt": [0.05, 0.9]}, "fixed": {"n_steps": 20}}
    with dask.config.set({"scheduler-address": external}):
        result = run_tool("run_sweep", sweep, workspace=tmp_path)
    assert (result.metrics["n_points"], result.metrics["n_failed"]) == (2, 1)
    assert "1 of 2 points failed" in result.summary and "dt=0.9" in result.summary and "unstable" in result.summary
    ds = xr.open_dataset(result.run_dir / "sweep.nc")
    assert ds["failed"].sel(dt=0.9).item() == 1 and not np.isfinite(ds.sel(dt=0.9).to_array().drop_sel(
        variable="failed")).any()
    assert [p.name for p in result.figures] == ["sweep_lines.png"]


# ----------------------------------------------------------------------------- bad input, before anything runs

@pytest.mark.parametrize(("sweep", "message"), [
    ({"tool": "run_kalman_magic", "grid": {"n_members": [5, 10]}},
     "unknown tool 'run_kalman_magic'.*run_3dvar_cycle.*run_da_experiment"),
    ({"tool": "search_lectures", "grid": {"k": [1, 2]}}, "not an experiment tool"),
    ({"tool": "run_sweep", "grid": {"seeds": [1, 2]}}, "not an experiment tool"),
    ({"tool": "run_3dvar_cycle", "grid": {"sigma_q": [0.1]}},
     "unknown argument 'sigma_q' for run_3dvar_cycle.*sigma_o"),
    ({"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1]}, "fixed": {"nsteps": 3}}, "unknown argument 'nsteps'"),
    ({"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1, -1.0], "sigma_b": [0.3]}},
     r"the point sigma_o=-1, sigma_b=0.3 \(seed 0\) is refused.*'sigma_o' = -1.0 is not allowed: must be a number > 0"),
    ({"tool": "run_3dvar_cycle", "grid": {"obs_pattern": ["x1", "x3"]}}, "obs_pattern='x3'.*refused.*one of"),
    ({"tool": "run_3dvar_cycle", "grid": {}}, "the grid is empty"),
    ({"tool": "run_3dvar_cycle", "grid": {"sigma_o": []}}, "'sigma_o' has no values"),
    ({"tool": "run_3dvar_cycle", "grid": {"sigma_o": [1, 1.0]}}, "repeats a value"),
    ({"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1]}, "fixed": {"sigma_o": 0.2}}, "both swept"),
    ({"tool": "run_3dvar_cycle", "grid": {"seed": [1, 2]}}, "use seeds=N"),
    ({"tool": "run_3dvar_cycle", "grid": {"n_steps": list(range(2, 202)), "sigma_o": [0.1 * k for k in range(1, 61)]}},
     "asks for 12,000 points .*200 n_steps × 60 sigma_o × 1 seed\\).*at most 10,000"),
    ({"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1, 0.2]}, "seeds": 5001}, "seeds.*1000"),
    ({"tool": "run_3dvar_cycle", "grid": '{"sigma_o": [0.1,'}, "'grid'.*not JSON"),
])
def test_bad_sweeps_are_refused_before_anything_runs_or_is_written(sweep, message, tmp_path):
    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:9"}):   # a cluster would fail differently
        with pytest.raises(ToolError, match="(?s)" + message):
            run_tool("run_sweep", sweep, workspace=tmp_path)
    assert nothing_written(tmp_path)


def test_an_unreachable_scheduler_is_named_within_the_timeout_and_nothing_is_written(tmp_path, monkeypatch):
    assert cluster.CONNECT_TIMEOUT_S <= 10
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2.0)    # the same path as the 10 s one, faster
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"    # nothing listens there once closed
    t0 = time.monotonic()
    with dask.config.set({"scheduler-address": address}), pytest.raises(ToolError, match=(
            f"cannot reach the Dask scheduler at '{address}'.*DASK_SCHEDULER_ADDRESS.*within 2 s")):
        run_tool("run_sweep", {"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.2]}}, workspace=tmp_path)
    assert time.monotonic() - t0 < 8
    assert nothing_written(tmp_path)


# ----------------------------------------------------------------------------- the plan and questions

def test_the_plan_lists_every_point_with_seeds_offset_by_a_fixed_seed():
    args = SweepArgs(tool="run_origen_oscillator", grid={"sigma_o": [0.1, 0.2], "covariance_update": [False, True]},
                     fixed={"seed": 7, "n_cycles": 4}, seeds=3)
    plan = plan_sweep(args, TOOLS, lambda tool, a: validate_args(TOOLS[tool], a))
    assert plan.shape == (2, 2, 3) and plan.seeds == (7, 8, 9) and len(plan.points) == 12
    assert len({p.key for p in plan.points}) == 12
    p = next(p for p in plan.points if p.index == (1, 0, 2))
    assert (p.args["sigma_o"], p.args["covariance_update"], p.args["seed"], p.args["n_cycles"]) == (0.2, False, 9, 4)
    assert p.args["n_steps"] == TOOLS["run_origen_oscillator"].args().n_steps        # defaults filled: a stable key


def test_grids_and_fixed_arguments_can_be_json_text():
    args = SweepArgs.model_validate({"tool": "run_3dvar_cycle", "grid": '{"sigma_o": [0.5, 1, 2]}',
                                     "fixed": '{"n_steps": 50}'})
    assert args.grid == {"sigma_o": [0.5, 1, 2]} and args.fixed == {"n_steps": 50}
    assert SweepArgs.model_validate({"tool": "t", "grid": "{}", "fixed": ""}).fixed == {}


@pytest.mark.parametrize("example", TOOLS["run_sweep"].examples, ids=lambda e: e.request[:40])
def test_questions_become_the_sweeps_of_the_declared_examples(example):
    assert sweep_from_question(example.request, TOOLS) == example.args


def test_questions_read_listed_values_seeds_and_only_the_target_tools_own_arguments():
    got = sweep_from_question("how does the ETKF rmse vary with inflation 1.0, 1.1 or 1.2 over 3 seeds?", TOOLS)
    assert got == {"tool": "run_da_experiment", "grid": {"inflation": [1.0, 1.1, 1.2]},
                   "fixed": {"method": "etkf"}, "seeds": 3}
    # one value written fixes the argument; the values tried come from the tool's default (¼, ½, 1, 2 ×)
    got = sweep_from_question("how does the error of the EnKF with 20 members depend on inflation?", TOOLS)
    assert got == {"tool": "run_da_experiment", "grid": {"inflation": [1.0, 1.2, 1.4]},
                   "fixed": {"method": "enkf", "n_members": 20}}
    sigma_b = TOOLS["run_3dvar_cycle"].args.model_fields["sigma_b"].default
    got = sweep_from_question("how does the 3D-Var cycle's error depend on background error and the epochs?", TOOLS)
    assert got == {"tool": "run_3dvar_cycle", "grid": {"sigma_b": [sigma_b * s for s in (0.25, 0.5, 1, 2)]}}
    # no keyword names a tool: the one whose arguments the question names
    assert sweep_from_question("how does the loss depend on the learning rate?", TOOLS)["tool"] == "train_obs2obs"
    assert sweep_from_question("what is 3D-Var?", TOOLS) == {}
    assert sweep_from_question("run 3D-Var with 0.5 observation error", TOOLS) == {}     # nothing varies
    with pytest.raises(ToolError, match="not an experiment tool"):                   # tools of tools are not swept
        plan_sweep(SweepArgs(tool="write_script", grid={"own_data": [False, True]}), TOOLS,
                   lambda tool, a: validate_args(TOOLS[tool], a))
