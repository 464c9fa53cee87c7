"""assimilate_atmosphere after train_obs2obs, as a student chains them."""

import time

import pytest

from tools.base import ToolError
from tools.registry import run_tool


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    ws = tmp_path_factory.mktemp("atmosda")
    run_tool("train_obs2obs", {"epochs": 30}, workspace=ws)
    t0 = time.perf_counter()
    res = run_tool("assimilate_atmosphere", workspace=ws)
    return ws, res, time.perf_counter() - t0


def test_defaults_compare_all_six_with_finite_numbers_and_both_figures(lab):
    _, res, seconds = lab
    m = res.metrics
    for k in ("obs2obs", "3dvar", "enkf", "3dvar_no_model", "climatology", "persistence"):
        assert 0 < m[f"rmse_{k}"] < 1, k
    # every cycled method beats climatology on the held-out times
    assert max(m["rmse_3dvar"], m["rmse_enkf"], m["rmse_3dvar_no_model"]) < m["rmse_climatology"]
    # assimilating y(t+1) with the true model beats the persistence-background 3D-Var
    assert m["rmse_enkf"] < m["rmse_3dvar_no_model"] and m["rmse_3dvar"] < m["rmse_3dvar_no_model"]
    assert "wins" in res.summary and f"{m['rmse_enkf']:.4f}" in res.summary
    assert {p.name for p in res.figures} == {"rmse_vs_time.png", "fields_and_errors.png"}
    print(f"assimilate_atmosphere defaults: {seconds:.1f} s; {m}")


def test_bad_input_names_the_argument(lab):
    ws = lab[0]
    for args, word in (({"n_members": 1}, "n_members"), ({"length_scale_x": 0}, "length_scale_x"),
                       ({"length_scale_z": -1.0}, "length_scale_z"), ({"methods": []}, "methods")):
        with pytest.raises(ToolError, match=word):
            run_tool("assimilate_atmosphere", args, workspace=ws)


def test_without_a_model_it_says_which_tool_to_run_first(tmp_path):
    with pytest.raises(ToolError, match="train_obs2obs"):
        run_tool("assimilate_atmosphere", workspace=tmp_path)


def test_a_dataset_without_held_out_times_is_refused(lab, tmp_path):
    ws = lab[0]
    other = run_tool("generate_observations", {"n_snapshots": 10, "snapshot_every": 50, "n_trajectories": 1},
                     workspace=ws)                                   # the notebook size: none held out by the model
    with pytest.raises(ToolError, match="held-out"):
        run_tool("assimilate_atmosphere", {"dataset": other.run_dir.name}, workspace=ws)


def test_reconstruction_summary_explains_an_error_at_the_source():
    from types import SimpleNamespace

    import numpy as np

    from toyda.atmosphere import AtmosphereConfig, source
    from toyda.observations import generate_dataset
    from tools.learning import _source_note

    cfg = AtmosphereConfig(nx=40, nz=16)
    ds = generate_dataset(cfg, n_snapshots=2, spinup_steps=10, n_levels=8)
    truth = np.full((16, 40), 0.1)
    puff = SimpleNamespace(truth=truth, pred=truth + 0.5 * source(cfg))
    assert "a puff that is not there yet" in _source_note(ds, puff)
    assert _source_note(ds, SimpleNamespace(truth=truth, pred=truth + 0.01)) == ""

