"""A class on one server: runs too big for it are refused before anything is written (with the
estimate and the limit), a run can be cancelled or outlive its time, a workspace has a bounded
number of runs going, and the run folders are unique and cleaned up after a killed process."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import time
import tracemalloc
from datetime import datetime

import pytest

from tools import base, registry
from tools.base import RunCancelled, ToolError, Workspace, clean_partials
from tools.registry import TOOLS, run_tool
from tools.settings import get_settings


@pytest.fixture
def limits(monkeypatch):
    """Set DALAB_MAX_* for one test (the settings are re-read)."""
    def set_(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    monkeypatch.delenv("DALAB_MAX_MEMORY_GB", raising=False)
    monkeypatch.delenv("DALAB_MAX_RUN_SECONDS", raising=False)
    get_settings.cache_clear()
    yield set_
    get_settings.cache_clear()


def nothing_written(ws) -> bool:
    return not (ws / "runs").exists() or not any((ws / "runs").iterdir())


def test_every_tool_with_its_defaults_fits_the_default_limits(limits):
    s = get_settings()
    assert (s.max_memory_gb, s.max_run_seconds) == (2.0, 600.0)
    for spec in TOOLS.values():
        if spec.cost is not None:
            needs = any(f.is_required() for f in spec.args.model_fields.values())
            required = spec.examples[0].args if needs else {}                 # write_script needs its tool
            memory, seconds = registry.check_cost(spec, spec.args(**required), s.max_memory_gb, s.max_run_seconds)
            assert 0 < memory <= s.max_memory_gb * 2**30 and 0 < seconds <= s.max_run_seconds, spec.name


def test_every_tool_declares_a_cost():
    assert [n for n, spec in TOOLS.items() if spec.cost is None] == []
    lecture = TOOLS["run_origen_lorenz63"].cost(TOOLS["run_origen_lorenz63"].args(variant="lecture", n_steps=10))
    assert lecture[1] >= 30                                              # its fixed size trains an MLP for long


def test_a_sweep_costs_its_points_shared_among_the_workers(tmp_path, limits, monkeypatch):
    from tools import cluster, sweep

    monkeypatch.setattr(sweep, "local_workers", lambda n: 2)
    spec, check = TOOLS["run_sweep"], lambda a: registry.check_cost(TOOLS["run_sweep"], spec.args(**a), 2.0, 600.0)
    small = {"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1, 0.2]}}
    memory, seconds = check(small)
    one = TOOLS["run_3dvar_cycle"].cost(TOOLS["run_3dvar_cycle"].args(sigma_o=0.1))
    assert memory == 2 * (sweep.WORKER_BYTES + one[0]) and seconds == pytest.approx(sweep.DASK_START_S + one[1])
    with pytest.raises(ToolError, match=r"run_sweep with these arguments would need about \d+ s"):
        check({"tool": "train_obs2obs", "grid": {"epochs": [100, 200]}, "seeds": 5})
    with pytest.raises(ToolError, match=r"the sweep's point n_obs=20000: this experiment is too long"):
        check({"tool": "run_da_experiment", "grid": {"n_obs": [100, 20_000]}, "fixed": {"method": "pf", "n_members": 2000}})
    with pytest.raises(ToolError, match="would need about"):             # nothing started, nothing written
        run_tool("run_sweep", {"tool": "train_obs2obs", "grid": {"epochs": [100, 200]}, "seeds": 5}, workspace=tmp_path)
    assert nothing_written(tmp_path) and cluster.local_workers(1) == 1


def test_the_da_estimates_follow_the_arguments():
    spec = TOOLS["run_da_experiment"]
    small = spec.cost(spec.args(method="etkf"))
    more = spec.cost(spec.args(method="etkf", n_members=200))
    longer = spec.cost(spec.args(method="etkf", n_obs=10_000))
    assert small[0] < more[0] and small[1] < more[1] and small[1] < longer[1] and small[0] < longer[0]
    compare = TOOLS["compare_da_methods"]
    one, three = (compare.cost(compare.args(methods=m)) for m in ("etkf", "etkf,pf,3dvar"))
    assert one[1] < three[1]


@pytest.mark.parametrize("name,args,says", [
    ("generate_observations", {"nx": 400, "nz": 200, "n_trajectories": 64, "n_snapshots": 2000, "snapshot_every": 1},
     "GiB of memory (the limit is 2 GiB per run, DALAB_MAX_MEMORY_GB)"),
    ("generate_observations", {"nx": 200, "nz": 100, "n_trajectories": 8, "n_snapshots": 10, "snapshot_every": 5000,
                               "spinup_steps": 50_000}, "s (the limit is 600 s per run, DALAB_MAX_RUN_SECONDS)"),
    ("train_lorenz63_emulator", {"epochs": 5000, "rollout_steps": 100}, "DALAB_MAX_RUN_SECONDS"),
    ("assimilate_atmosphere", {"n_members": 200}, "DALAB_MAX_RUN_SECONDS"),
])
def test_runs_too_big_are_refused_with_the_estimate_before_anything_is_written(tmp_path, limits, name, args, says):
    with pytest.raises(ToolError, match="would need about") as err:
        run_tool(name, args, workspace=tmp_path)
    assert says in str(err.value) and "smaller run" in str(err.value)
    assert nothing_written(tmp_path)


def test_da_twins_are_sized_before_the_truth_is_made(tmp_path, limits):
    with pytest.raises(ToolError, match=r"too long for an interactive call .* fewer n_obs .* fewer n_members"):
        run_tool("run_da_experiment", {"model": "lorenz96", "method": "pf", "n_members": 2000, "n_obs": 20_000},
                 workspace=tmp_path)
    with pytest.raises(ToolError, match=r"these 4 methods together are too long"):
        run_tool("compare_da_methods", {"methods": "pf,etkf,enkf,3dvar", "n_obs": 20_000, "obs_every": 500},
                 workspace=tmp_path)
    limits(DALAB_MAX_MEMORY_GB="0.05")               # the ensembles kept for the CRPS: 2 K N n numbers
    with pytest.raises(ToolError, match=r"run_da_experiment with these arguments would need about \d+ MiB of memory"):
        run_tool("run_da_experiment", {"method": "pf", "n_members": 2000, "n_obs": 200}, workspace=tmp_path)
    assert nothing_written(tmp_path)


def test_the_limits_are_configurable(tmp_path, limits):
    limits(DALAB_MAX_MEMORY_GB="0.001")
    with pytest.raises(ToolError, match=r"limit is 0.001 GiB"):
        run_tool("simulate_atmosphere", {"n_steps": 200}, workspace=tmp_path)
    limits(DALAB_MAX_MEMORY_GB="2", DALAB_MAX_RUN_SECONDS="1")
    with pytest.raises(ToolError, match=r"limit is 1 s"):
        run_tool("run_origen_lorenz63", {"n_steps": 100}, workspace=tmp_path)
    assert nothing_written(tmp_path)


def test_the_estimates_bound_what_a_run_really_takes(tmp_path, limits):
    spec = TOOLS["generate_observations"]
    args = {"n_trajectories": 2, "n_snapshots": 40, "snapshot_every": 10, "spinup_steps": 200}
    memory, seconds = spec.cost(spec.args(**args))
    run_tool("generate_observations", args, workspace=tmp_path)       # imports and compiles what the run needs
    t0 = time.perf_counter()
    run_tool("generate_observations", args, workspace=tmp_path)
    took = time.perf_counter() - t0
    tracemalloc.start()                                                 # numpy's arrays are traced too
    run_tool("generate_observations", args, workspace=tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 8 * 2 * 40 * 130 * 50 < peak < memory                       # more than the snapshots, less than estimated
    assert took < 3 * seconds                                           # a busy shared machine may be slower


def test_pulse_period_has_a_lower_bound():
    with pytest.raises(ToolError, match=r"'pulse_period'.*>= 0.1"):
        registry.validate_args(TOOLS["simulate_atmosphere"], {"pulse_period": 1e-8})
    with pytest.raises(ToolError, match=r"pulse_period \(0.1\) must be at least two time steps"):
        TOOLS["simulate_atmosphere"].args(pulse_period=0.1, dt=0.1).check()


def test_strict_numbers_nan_and_tiny_sigmas(tmp_path):
    spec = TOOLS["run_3dvar_cycle"]
    with pytest.raises(ToolError, match=r"'sigma_o' = True is not allowed: true/false is not a number"):
        registry.validate_args(spec, {"sigma_o": True})
    with pytest.raises(ToolError, match=r"'n_steps' = False"):
        registry.validate_args(spec, {"n_steps": False})
    registry.validate_args(spec, {"covariance_update": True})                 # a real boolean still is one
    for nan in (float("nan"), float("inf"), "nan", "-Infinity"):
        with pytest.raises(ToolError, match=r"'sigma_o' .*NaN and infinity are not allowed"):
            registry.validate_args(spec, {"sigma_o": nan})
    with pytest.raises(ToolError, match=r"argument 'sigma_b' = 1e-200 is too small.*B.*sigma_b >= 1e-06"):
        run_tool("run_3dvar_cycle", {"sigma_b": 1e-200}, workspace=tmp_path)
    with pytest.raises(ToolError, match=r"'sigma_o' = 1e-300 is too small.*R"):
        run_tool("run_origen_lorenz63", {"sigma_o": 1e-300}, workspace=tmp_path)
    with pytest.raises(ToolError) as err:
        registry.validate_args(TOOLS["search_lectures"], {"query": "q" * 100_000})
    assert len(str(err.value)) < 600 and "(100002 characters)" in str(err.value)


def _slow_tool(seconds: float, checks: list):
    def fn(args, ctx):
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            ctx.file("part.npz").write_bytes(b"x")
            checks.append(time.monotonic() - t0)
            ctx.progress(0.5, "working")
            time.sleep(0.05)
        return "done", {}
    return fn


def test_cancel_stops_a_run_and_removes_its_partial_folder(tmp_path, monkeypatch):
    checks: list[float] = []
    spec = dataclasses.replace(TOOLS["run_3dvar_cycle"], fn=_slow_tool(30, checks))
    monkeypatch.setitem(TOOLS, "run_3dvar_cycle", spec)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(RunCancelled, match="cancelled"):
        run_tool("run_3dvar_cycle", workspace=tmp_path, cancel=cancel)
    assert time.monotonic() - t0 < 2 and checks
    assert list((tmp_path / "runs").iterdir()) == []                   # no partial folder, no reserved name


def test_a_run_that_outlives_twice_its_limit_is_stopped(tmp_path, monkeypatch, limits):
    limits(DALAB_MAX_RUN_SECONDS="0.5")
    spec = dataclasses.replace(TOOLS["run_3dvar_cycle"], fn=_slow_tool(30, []), cost=lambda a: (0.0, 0.1))
    monkeypatch.setitem(TOOLS, "run_3dvar_cycle", spec)
    t0 = time.monotonic()
    with pytest.raises(RunCancelled, match="ran past twice its time limit"):
        run_tool("run_3dvar_cycle", workspace=tmp_path)
    assert time.monotonic() - t0 < 3 and list((tmp_path / "runs").iterdir()) == []


def test_a_workspace_has_at_most_max_active_runs_going(tmp_path):
    ws = Workspace(tmp_path, confined=True, max_active=1)
    with ws.slot():
        with pytest.raises(ToolError, match=r"already have 1 run\(s\) going.*Cancel"):
            run_tool("run_3dvar_cycle", {"n_steps": 5}, workspace=ws)
    assert run_tool("run_3dvar_cycle", {"n_steps": 5}, workspace=ws).metrics       # free again


def test_runs_started_in_the_same_microsecond_get_different_folders(tmp_path, monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 1, 12, 0, 0, 123456)

    monkeypatch.setattr(base, "datetime", Frozen)
    results, errors = [], []

    def one(i: int) -> None:
        try:
            results.append(run_tool("run_3dvar_cycle", {"n_steps": 10, "seed": i}, workspace=tmp_path))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len({r.run_dir for r in results}) == 6
    assert all((r.run_dir / "result.json").is_file() for r in results)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(r.run_dir.name for r in results)


def test_partial_folders_of_dead_processes_are_removed_at_start_up(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    done = run_tool("run_3dvar_cycle", {"n_steps": 10}, workspace=tmp_path)
    runs, session_runs = tmp_path / "runs", tmp_path / "sessions" / ("c" * 32) / "runs"
    session_runs.mkdir(parents=True)
    left = []
    for where, pid in ((runs, dead.pid), (session_runs, dead.pid), (runs, os.getpid())):
        name = f"20260101-000000-00000{len(left)}-simulate_atmosphere"
        (where / name).mkdir()                                             # the reserved name, still empty
        tmp = where / f".{name}.partial-{pid}-123"
        (tmp / "figs").mkdir(parents=True)
        left.append((where / name, tmp))
    old = where / ".20260101-000000-000009-x.partial-{}-1".format(os.getpid())   # our pid, but older than us:
    old.mkdir()                                                                   # a recycled process id
    os.utime(old, (time.time() - 10 * 86400, time.time() - 10 * 86400))
    assert clean_partials(tmp_path) == 3
    assert not left[0][1].exists() and not left[0][0].exists()
    assert not left[1][1].exists() and not left[1][0].exists()
    assert left[2][1].exists() and left[2][0].exists()                     # a live run is left alone
    assert not old.exists() and done.run_dir.is_dir()                      # finished runs are never touched


def test_confined_workspaces_are_private(tmp_path):
    ws = Workspace(tmp_path / "sessions" / ("d" * 32), confined=True)
    result = run_tool("run_3dvar_cycle", {"n_steps": 10}, workspace=ws)
    assert ws.root.stat().st_mode & 0o777 == 0o700
    assert str(ws.root) not in result.code and "WORKSPACE = Path(__file__).resolve().parents[2]" in result.code
