"""run_da_experiment and compare_da_methods end to end: twins, the student's files (gaps, no truth),
bad input refused with nothing left behind, divergence, reproduce.py and the CLI example."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tools import da, dasetup
from tools.base import ToolError, Workspace
from tools.dafiles import write_csv
from tools.registry import TOOLS, run_tool
from toyda.experiment import Experiment, get_model, twin

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
SHORT = {"model": "lorenz63", "n_obs": 160, "burn_in": 8.0}
ENV = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                    "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}


def _twin_files(tmp_path, n_obs=160, sigma_o=np.sqrt(2.0), seed=3, drop=0.0):
    """A Lorenz-63 twin (sakov2012 spacing) written as obs.csv / truth.csv; ``drop`` = fraction of cells left empty."""
    exp = Experiment(model=get_model("lorenz63", dt=0.01), obs_every=25, observed="all", sigma_o=float(sigma_o),
                     n_obs=n_obs, burn_in=8.0, seed=seed)
    obs = twin(exp)
    y = obs.y.copy()
    y[np.random.default_rng(seed).random(y.shape) < drop] = np.nan
    write_csv(tmp_path / "obs.csv", obs.t, y)
    write_csv(tmp_path / "truth.csv", np.concatenate([[0.0], obs.t]), np.vstack([obs.x0_true, obs.x_true]))
    return obs


def _pngs(result):
    return {p.stem for p in result.figures if p.read_bytes()[:8] == PNG}


def test_etkf_twin_writes_figures_metrics_files_and_a_reproduce_script_that_prints_the_same_rmse(tmp_path):
    result = run_tool("run_da_experiment", SHORT | {"method": "etkf", "n_members": 10, "inflation": 1.02},
                      workspace=tmp_path)
    m = result.metrics
    assert {"timeseries", "error_spread", "rank_histogram"} <= _pngs(result)
    assert {p.name for p in result.files} == {"observations.csv", "truth.csv"}
    for key in ("rmse_a", "rmse_f", "spread_a", "crps_a", "wall_s", "omf_rms", "oma_rms", "sigma_o_desroziers"):
        assert np.isfinite(m[key]), key
    assert m["rmse_a"] < m["rmse_f"] and m["rmse_a"] < m["sigma_o"]          # the filter beats its forecast and the obs
    assert m["diverged"] == 0 and f"{m['rmse_a']:.3f}" in result.summary
    args = json.loads((result.run_dir / "args.json").read_text())           # defaults written into the record
    assert args["obs_every"] == 25 and args["dt"] == 0.01 and args["n_members"] == 10
    out = subprocess.run([sys.executable, str(result.run_dir / "reproduce.py")], capture_output=True, text=True,
                         env=ENV | {"DALAB_HOME": str(tmp_path)}, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"etkf: rmse_a = {m['rmse_a']}" in out.stdout
    script = (result.run_dir / "reproduce.py").read_text()                  # the science, not run_tool
    assert "[('etkf', {'n_members': 10, 'inflation': 1.02})]" in script and "method.assimilate(exp, obs" in script


def test_ensemble_kalman_filter_beats_3dvar_on_the_same_twin(tmp_path):
    result = run_tool("compare_da_methods", SHORT | {"methods": "3dvar, etkf"}, workspace=tmp_path)
    m = result.metrics
    assert _pngs(result) == {"comparison"}
    assert m["best_method"] == "etkf" and m["rmse_a_etkf"] < 0.8 * m["rmse_a_3dvar"]
    assert "| method | rmse_a |" in result.summary and "etkf (n_members=10" in result.summary
    single = run_tool("run_da_experiment", SHORT | {"method": "3dvar"}, workspace=tmp_path)
    assert single.metrics["rmse_a"] == m["rmse_a_3dvar"]                      # same truth, observations, numbers
    out = subprocess.run([sys.executable, str(result.run_dir / "reproduce.py")], capture_output=True, text=True,
                         env=ENV | {"DALAB_HOME": str(tmp_path)}, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"etkf: rmse_a = {m['rmse_a_etkf']}" in out.stdout and f"3dvar: rmse_a = {m['rmse_a_3dvar']}" in out.stdout


def test_compare_accepts_json_settings_and_repeated_methods(tmp_path):
    methods = json.dumps([{"method": "etkf", "n_members": 5, "inflation": 1.1}, {"method": "etkf", "n_members": 15}])
    m = run_tool("compare_da_methods", SHORT | {"n_obs": 80, "methods": methods}, workspace=tmp_path).metrics
    assert {"rmse_a_etkf", "rmse_a_etkf_2"} <= set(m) and m["n_methods"] == 2
    assert da.parse_methods("3D-Var, the particle filter and EnKF") == [{"method": "3dvar"}, {"method": "pf"},
                                                                         {"method": "enkf"}]


def test_lorenz96_letkf_draws_the_hovmoeller(tmp_path):
    result = run_tool("run_da_experiment", {"model": "lorenz96", "method": "letkf", "n_obs": 120, "burn_in": 2.0},
                      workspace=tmp_path)
    assert {"timeseries", "error_spread", "rank_histogram", "hovmoeller"} <= _pngs(result)
    assert result.metrics["rmse_a"] < 1.0 and result.metrics["diverged"] == 0


def test_files_with_gaps_and_truth_run(tmp_path):
    _twin_files(tmp_path, drop=0.3)
    result = run_tool("run_da_experiment", {"method": "3dvar", "observations": str(tmp_path / "obs.csv"),
                                            "truth": str(tmp_path / "truth.csv"), "burn_in": 8.0}, workspace=tmp_path)
    m = result.metrics
    assert np.isfinite(m["rmse_a"]) and m["rmse_a"] < min(m["rmse_f"], 1.5 * m["sigma_o"]) and m["n_obs"] == 160
    assert result.args["observations"] == str((tmp_path / "obs.csv").resolve())   # reproduce.py names the file
    assert not result.files                                                     # nothing copied: the data are yours


def test_without_truth_the_innovations_estimate_sigma_o(tmp_path):
    sigma_o = 1.5
    _twin_files(tmp_path, n_obs=400, sigma_o=sigma_o)
    result = run_tool("run_da_experiment", {"method": "etkf", "observations": str(tmp_path / "obs.csv"),
                                            "sigma_o": sigma_o, "burn_in": 10.0}, workspace=tmp_path)
    m = result.metrics
    assert "rmse_a" not in m and "no truth" in result.summary
    assert abs(m["omf_mean"]) < 0.2 and m["oma_rms"] < m["omf_rms"]
    assert m["sigma_o_desroziers"] == pytest.approx(sigma_o, rel=0.15)
    assert "Desroziers" in result.summary and {"timeseries", "error_spread"} <= _pngs(result)


BAD = [
    ({"method": "etkf", "n_members": 1}, r"'n_members' = 1 is not allowed: must be an integer >= 2"),
    ({"method": "etkf", "inflation": 0.9}, r"'inflation' = 0.9 is not allowed: must be a number >= 1"),
    ({"method": "etkf", "localisation_radius": 3.0}, r"localisation_radius applies only to model='lorenz96'"),
    ({"method": "letkf"}, r"method='letkf' .* use model='lorenz96'"),
    ({"method": "4dvar", "window": 0}, r"'window' = 0 is not allowed: must be an integer >= 1"),
    ({"method": "3dvar", "sigma_o": 0}, r"'sigma_o' = 0 is not allowed: must be a number > 0"),
    ({"method": "3dvar", "n_members": 10}, r"n_members does not apply to method='3dvar'; it is a setting of .*etkf"),
    ({"method": "pf", "n_members": 2000, "n_obs": 20000}, r"too long for an interactive call .* fewer n_obs .* fewer n_members"),
    ({"method": "3dvar", "observed": "q"}, r"'observed' = 'q' is not allowed.*'every:k'"),
    ({"model": "lorenz96", "observed": "xz"}, r"observed='xz' names Lorenz-63 components"),
    ({"method": "3dvar", "n_obs": 10, "burn_in": 5.0}, r"burn_in=5 leaves nothing to score"),
    ({"method": "3dvar", "truth": "truth.csv"}, r"truth= needs observations="),
    ({"method": "3dvar", "observations": "nope.csv"}, r"observations: there is no file 'nope.csv'"),
    ({"method": "3dvar", "observations": "obs.txt"}, r"extension '.txt' is not allowed"),
]


@pytest.mark.parametrize("args, match", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_is_refused_naming_the_argument_and_leaves_no_run_folder(tmp_path, args, match):
    with pytest.raises(ToolError, match=match):
        run_tool("run_da_experiment", args, workspace=tmp_path)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_ui_session_cannot_read_files_outside_its_workspace(tmp_path):
    _twin_files(tmp_path, n_obs=40)
    session = Workspace(tmp_path / "session", confined=True)
    (tmp_path / "session").mkdir()
    for name in (str(tmp_path / "obs.csv"), "../obs.csv"):
        with pytest.raises(ToolError, match="is outside your workspace"):
            run_tool("run_da_experiment", {"observations": name}, workspace=session)
    (tmp_path / "session" / "obs.csv").write_bytes((tmp_path / "obs.csv").read_bytes())
    result = run_tool("run_da_experiment", {"method": "3dvar", "observations": "obs.csv", "burn_in": 2.0},
                      workspace=session)
    assert result.metrics["n_obs"] == 40 and "rmse_a" not in result.metrics
    # the record and reproduce.py name the file inside the workspace, never the server's path (issue 17)
    script = (result.run_dir / "reproduce.py").read_text()
    assert result.args["observations"] == "obs.csv" and str(tmp_path) not in script
    assert "read_observations(WORKSPACE / 'obs.csv'" in script
    out = subprocess.run([sys.executable, str(result.run_dir / "reproduce.py")], capture_output=True, text=True,
                         env=ENV, cwd=tmp_path, timeout=300)
    assert out.returncode == 0 and "3dvar: n_obs = 40" in out.stdout, out.stderr[-2000:]   # the same file


def test_the_home_workspace_of_mcp_cannot_read_a_sessions_files(tmp_path):
    student = tmp_path / "sessions" / ("a" * 32)
    student.mkdir(parents=True)
    _twin_files(student, n_obs=40)
    home = Workspace(tmp_path, confined=True)                  # how MCP runs: DALAB_HOME, confined
    with pytest.raises(ToolError, match="is outside your workspace"):
        run_tool("run_da_experiment", {"observations": f"sessions/{'a' * 32}/obs.csv"}, workspace=home)


def test_bad_files_and_methods_are_refused_with_their_line_or_entry(tmp_path):
    (tmp_path / "obs.csv").write_text("time,x,y,z\n0.25,1,2,3\n0.5,1,oops,3\n")
    with pytest.raises(ToolError, match=r"observations: line 3, column 'y': 'oops' is not a number"):
        run_tool("run_da_experiment", {"observations": str(tmp_path / "obs.csv")}, workspace=tmp_path)
    _twin_files(tmp_path, n_obs=40)
    with pytest.raises(ToolError, match="obs_every cannot be set with observations="):
        run_tool("run_da_experiment", {"observations": str(tmp_path / "obs.csv"), "obs_every": 5}, workspace=tmp_path)
    with pytest.raises(ToolError, match=r"methods\[1\] = 'kalman' is not a method"):
        run_tool("compare_da_methods", {"methods": "3dvar,kalman"}, workspace=tmp_path)
    with pytest.raises(ToolError, match=r"(?s)methods\[0\] .*'inflation' = 0.5 is not allowed"):
        run_tool("compare_da_methods", {"methods": '[{"method": "etkf", "inflation": 0.5}]'}, workspace=tmp_path)
    with pytest.raises(ToolError, match=r"methods\[0\]: unknown setting\(s\) members"):
        run_tool("compare_da_methods", {"methods": '[{"method": "etkf", "members": 5}]'}, workspace=tmp_path)
    assert not any((tmp_path / "runs").iterdir())


def test_a_diverging_method_says_when_and_keeps_its_figures(tmp_path, monkeypatch):
    real = dasetup.make_method

    class Diverging:
        """ETKF whose result is cut at observation 60, as the cycling core does on divergence."""

        def __init__(self, **settings):
            self.inner = real("etkf", **settings)

        def assimilate(self, exp, obs, rng):
            r = self.inner.assimilate(exp, obs, rng)
            cut = {f.name: (getattr(r, f.name)[:60] if isinstance(getattr(r, f.name), np.ndarray) else getattr(r, f.name))
                   for f in dataclasses.fields(r)}
            return dataclasses.replace(r, **cut | {"diverged_at": 60})

    monkeypatch.setattr(dasetup, "make_method", lambda name, **s: Diverging(**s))
    result = run_tool("run_da_experiment", SHORT | {"method": "etkf"}, workspace=tmp_path)
    m = result.metrics
    assert m["diverged"] == 1 and m["diverged_at_t"] == pytest.approx(61 * 0.25)
    assert "DIVERGED at t = 15.25" in result.summary
    assert all(np.isfinite(v) for v in m.values() if isinstance(v, float))
    assert {"timeseries", "error_spread", "rank_histogram"} <= _pngs(result)


def test_the_issue_example_works_through_the_cli(tmp_path):
    _twin_files(tmp_path, n_obs=100)
    cmd = [sys.executable, "-m", "assistant.cli", "tool", "run_da_experiment", "model=lorenz63", "method=etkf",
           "n_members=10", "inflation=1.02", "observations=obs.csv", "truth=truth.csv", "dt=0.01", "sigma_o=1.414",
           "burn_in=16", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV | {"DALAB_HOME": str(tmp_path / "home")},
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["metrics"]["method"] == "etkf" and result["metrics"]["rmse_a"] < 1.414
    assert all(Path(p).is_file() for p in result["figures"])
    bad = subprocess.run(cmd[:-5] + ["inflation=0.5", "--json"], capture_output=True, text=True,
                         env=ENV | {"DALAB_HOME": str(tmp_path / "home")}, cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and "inflation" in bad.stderr and "Traceback" not in bad.stderr


def test_requests_naming_a_da_method_route_to_the_da_tools_not_origen():
    from assistant.offline import pick_tool

    for name in ("run_da_experiment", "compare_da_methods"):
        for example in TOOLS[name].examples:
            assert pick_tool(example.request) == name, example.request
    assert pick_tool("run ORIGEN on Lorenz-63") == "run_origen_lorenz63"
    assert pick_tool("run a 3D-Var cycle") == "run_3dvar_cycle"
