"""run_3dvar_cycle's covariance update made teachable: without model error the gain collapses and
the filter diverges; with model error q (or inflation) it stays stable and beats fixed B."""

import numpy as np
import pytest

from tools.base import ToolError
from tools.registry import run_tool
from toyda import oscillator as osc
from toyda.metrics import rmse

ISSUE = {"sigma_b": 0.8, "sigma_o": 0.3}        # the setting a student tried: fixed-B gain 0.88


def test_without_model_error_the_gain_collapses_and_the_filter_diverges(tmp_path):
    res = run_tool("run_3dvar_cycle", {**ISSUE, "covariance_update": True}, workspace=tmp_path)
    m = res.metrics
    assert m["diverged"] == 1
    assert m["gain_first"] == pytest.approx(0.8**2 / (0.8**2 + 0.3**2))
    assert m["gain_end_mean"] < 0.05 * m["gain_first"]
    assert m["B_var_last_x1"] < 0.01 and m["B_var_last_x2"] < 0.01
    assert m["rmse_analysis"] > 2 * m["rmse_analysis_fixed_B"]          # worse than not updating B at all
    assert "filter divergence" in res.summary and "Add q or inflation" in res.summary
    assert "stops listening to the observations" in res.summary


@pytest.mark.parametrize("extra", [{"q": 0.02}, {"inflation": 1.5}])
def test_model_error_or_inflation_keeps_the_gain_and_beats_fixed_B(tmp_path, extra):
    for seed in range(5):
        res = run_tool("run_3dvar_cycle", {**ISSUE, "covariance_update": True, "seed": seed, **extra},
                       workspace=tmp_path)
        m = res.metrics
        assert m["diverged"] == 0, seed
        assert 0.2 < m["gain_end_mean"] < m["gain_first"], seed                # alive, below the start
        assert m["rmse_analysis"] < m["rmse_analysis_fixed_B"], seed
        assert "stays there" in res.summary and "filter divergence" not in res.summary


def test_q_settles_B_where_an_observation_removes_what_a_step_adds():
    """Observing x1 at every step: the variance tends to the fixed point of v ← v σ_o²/(v+σ_o²) + q."""
    truth = osc.truth(400)
    y, which = osc.observe(truth, "x1", 0.3, np.random.default_rng(0))
    q, r = 0.02, 0.09
    cyc = osc.cycle_3dvar(y, which, 0.8, 0.3, covariance_update=True, q=q)
    v = (q + np.sqrt(q**2 + 4 * q * r)) / 2     # background variance b = b r/(b + r) + q
    assert cyc.B[-1, 0, 0] == pytest.approx(v, rel=1e-6)
    assert cyc.K[-1, 0] == pytest.approx(v / (v + r), rel=1e-6)


def test_defaults_keep_the_covariance_update_as_it_was():
    truth = osc.truth(100)
    y, which = osc.observe(truth, "random", 0.3, np.random.default_rng(0))
    plain = osc.cycle_3dvar(y, which, 0.8, 0.3, covariance_update=True)
    same = osc.cycle_3dvar(y, which, 0.8, 0.3, covariance_update=True, q=0.0, inflation=1.0)
    np.testing.assert_array_equal(plain.x_a, same.x_a)
    assert rmse(plain.x_a, truth) == pytest.approx(0.693, abs=5e-4)       # the number the issue reported


@pytest.mark.parametrize(("args", "words"), [
    ({"covariance_update": True, "q": -0.1}, ["'q'", ">= 0"]),
    ({"covariance_update": True, "inflation": 0.9}, ["'inflation'", ">= 1"]),
    ({"q": 0.02}, ["covariance_update=true", "q=0.02"]),
    ({"inflation": 1.2}, ["covariance_update=true", "inflation=1.2"]),
])
def test_bad_q_or_inflation_is_refused_naming_the_argument(tmp_path, args, words):
    with pytest.raises(ToolError) as err:
        run_tool("run_3dvar_cycle", args, workspace=tmp_path)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert "Input should" not in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_inflation_below_one_is_refused_by_the_numerics():
    with pytest.raises(ValueError, match="inflation must be a finite number >= 1"):
        osc.cycle_3dvar(np.zeros(3), np.array([0, 1, 1]), covariance_update=True, inflation=0.5)


def test_fixed_B_answer_links_the_rmse_to_the_plateau_argument(tmp_path):
    res = run_tool("run_3dvar_cycle", ISSUE, workspace=tmp_path)
    g = 0.8**2 / (0.8**2 + 0.3**2)
    assert res.metrics["rmse_floor_fixed_B"] == pytest.approx(0.3 * np.sqrt(g / (2 - g)))
    assert res.metrics["rmse_analysis"] > res.metrics["rmse_floor_fixed_B"]
    assert "plateau" in res.summary and f"{res.metrics['rmse_floor_fixed_B']:.3f}" in res.summary
