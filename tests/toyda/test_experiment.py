"""The shared experiment: models, climatology, twins, masks, the cycling core and the scores."""

import dataclasses

import numpy as np
import pytest

from toyda.da import METHODS, make_method
from toyda.da.base import DAResult, cycle, diverged, first_background, first_ensemble, inflate, spread
from toyda.da.diagnostics import crps_ensemble, rank_histogram, score
from toyda.experiment import Experiment, Observations, get_model, scored, twin


def test_get_model_defaults_and_refusals():
    m63, m96 = get_model("lorenz63"), get_model("lorenz96")
    assert (m63.n, m63.dt, m63.params["rho"]) == (3, 0.01, 28.0)
    assert (m96.n, m96.dt, m96.params) == (40, 0.05, {"n": 40, "F": 8.0})
    assert get_model("lorenz96", dt=0.01, n=12, F=10).n == 12
    with pytest.raises(ValueError, match="lorenz63, lorenz96"):
        get_model("lorenz84")
    with pytest.raises(ValueError, match="takes the parameters sigma, rho, beta, not F"):
        get_model("lorenz63", F=8.0)


def test_climatology_is_cached_and_plausible():
    m = get_model("lorenz63")
    mu, C = m.climatology()
    assert get_model("lorenz63").climatology()[0] is mu    # computed once per (name, dt, params)
    assert not mu.flags.writeable
    assert 20 < mu[2] < 27 and abs(mu[0]) < 2 and 50 < C[0, 0] < 80  # Lorenz-63: z̄ ≈ 23.5, var x ≈ 62
    assert np.all(np.linalg.eigvalsh(C) > 0)
    mu96, C96 = get_model("lorenz96").climatology()
    assert 2.0 < mu96.mean() < 2.7 and 11 < np.diag(C96).mean() < 15  # x̄ ≈ 2.3, var ≈ 13
    assert get_model("lorenz63", rho=20.0).climatology()[0] is not mu


def test_twin_shapes_times_noise_and_reproducibility():
    exp = Experiment(get_model("lorenz63"), obs_every=5, sigma_o=0.5, n_obs=400, seed=7)
    obs = twin(exp)
    assert obs.y.shape == obs.x_true.shape == (400, 3) and obs.x0_true.shape == (3,)
    assert np.allclose(obs.t, 0.05 * np.arange(1, 401)) and np.all(obs.steps == 5)
    assert np.allclose(exp.model.forecast(obs.x0_true, 5), obs.x_true[0])
    assert np.std(obs.y - obs.x_true) == pytest.approx(0.5, rel=0.08)
    assert np.array_equal(twin(exp).y, obs.y)
    assert not np.array_equal(twin(dataclasses.replace(exp, seed=8)).y, obs.y)


@pytest.mark.parametrize("model, observed, per_row", [
    ("lorenz63", "all", 3), ("lorenz63", "x", 1), ("lorenz63", "xz", 2),
    ("lorenz96", "every:4", 10), ("lorenz96", "random:5", 5)])
def test_observed_components_are_nan_masks(model, observed, per_row):
    exp = Experiment(get_model(model), observed=observed, n_obs=30)
    obs = twin(exp)
    seen = np.isfinite(obs.y)
    assert np.all(seen.sum(axis=1) == per_row)
    if observed == "xz":
        assert seen[:, [0, 2]].all() and not seen[:, 1].any()
    if observed == "every:4":
        assert seen[:, ::4].all()
    if observed.startswith("random"):
        assert len({tuple(r) for r in seen}) > 10           # drawn anew at each time


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma_o": 0.0}, "sigma_o"), ({"sigma_o": float("inf")}, "sigma_o"), ({"obs_every": 0}, "obs_every"),
    ({"n_obs": 0}, "n_obs"), ({"burn_in": -1.0}, "burn_in"), ({"observed": "q"}, "observed='q'"),
    ({"observed": "random:99"}, "observed"), ({"observed": "every:0"}, "observed")])
def test_experiment_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Experiment(get_model("lorenz63"), **kwargs)


def test_scored_after_burn_in():
    obs = Observations(np.array([0.5, 1.0, 1.5, 2.0]), np.zeros((4, 3)), np.ones(4, int))
    assert scored(obs, 1.0).tolist() == [False, False, True, True]


def test_first_background_and_ensemble():
    exp = Experiment(get_model("lorenz63"), n_obs=5)
    obs = twin(exp)
    E = first_ensemble(exp, obs, 4000, np.random.default_rng(0))
    assert E.shape == (4000, 3) and np.allclose(np.var(E, 0), 2.0, rtol=0.1)   # DAPPER's X0: C = 2
    x, P = first_background(exp, obs, np.random.default_rng(0))
    assert np.allclose(P, 2.0 * np.eye(3))
    x, P = first_background(exp, dataclasses.replace(obs, x0_true=None), np.random.default_rng(0))
    assert np.array_equal(x, exp.model.climatology()[0]) and np.array_equal(P, exp.model.climatology()[1])


def test_inflation_keeps_the_mean_and_scales_the_spread():
    E = np.random.default_rng(1).normal(size=(10, 3))
    F = inflate(E, 1.5)
    assert np.allclose(F.mean(0), E.mean(0)) and spread(F) == pytest.approx(1.5 * spread(E))
    assert inflate(E, 1.0) is E


def test_cycle_stops_and_cuts_at_divergence():
    exp = Experiment(get_model("lorenz63"), obs_every=2, n_obs=20)
    obs = twin(exp)

    def analyse(E, y, observed, sigma_o, rng):
        analyse.k += 1
        return E + (1e9 if analyse.k == 6 else 0.0)

    analyse.k = 0
    res = cycle(exp, obs, np.zeros((3, 3)) + obs.x0_true, analyse, np.random.default_rng(0))
    assert res.diverged_at == 5 and res.x_a.shape == (5, 3) and res.E_a.shape == (5, 3, 3)
    assert diverged(np.array([np.nan, 0, 0]), exp) and not diverged(obs.x_true[0], exp)


def test_cycle_skips_times_without_observations():
    exp = Experiment(get_model("lorenz63"), n_obs=6)
    obs = twin(exp)
    y = obs.y.copy()
    y[2] = np.nan
    res = cycle(exp, dataclasses.replace(obs, y=y), obs.x0_true[None], lambda E, *a: E * 0 + 1.0,
                np.random.default_rng(0))
    assert np.array_equal(res.x_a[2], res.x_f[2]) and np.all(res.x_a[3] == 1.0)


def test_scores_as_dapper_defines_them():
    t = np.arange(1, 5) * 1.0
    truth = np.zeros((4, 2))
    x_a = np.array([[9.0, 9.0], [3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    obs = Observations(t, truth, np.ones(4, int), truth, None)
    res = DAResult(x_f=2 * x_a, x_a=x_a, spread_a=np.array([5.0, 1.0, 2.0, 3.0]))
    s = score(res, obs, burn_in=1.0)                      # times 2, 3, 4 count
    assert s["rmse_a"] == pytest.approx((np.sqrt(12.5) + 0 + 1) / 3)
    assert s["rmse_f"] == pytest.approx(2 * s["rmse_a"]) and s["spread_a"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="truth"):
        score(res, dataclasses.replace(obs, x_true=None), 0.0)


def test_crps_and_rank_histogram():
    rng = np.random.default_rng(2)
    assert crps_ensemble(np.array([[[3.0]]]), np.array([[1.0]])) == pytest.approx(2.0)   # one member: |X − x|
    # a large N(0, 1) ensemble against x = 0: CRPS = σ (2 φ(0) − 1/√π) ≈ 0.2337
    assert crps_ensemble(rng.standard_normal((1, 1000, 1)), np.zeros((1, 1))) == pytest.approx(0.2337, abs=0.02)
    E, x = rng.standard_normal((2000, 9, 2)), rng.standard_normal((2000, 2))   # exchangeable: flat
    h = rank_histogram(E, x)
    assert h.shape == (10,) and h.sum() == 4000 and h.min() > 300 and h.max() < 500
    assert rank_histogram(E, x + 10)[-1] == 4000          # truth above every member


def test_make_method_names_what_is_allowed():
    assert set(METHODS) >= {"oi", "3dvar", "extkf", "4dvar"}
    assert make_method("3dvar", b_scale=0.2).b_scale == 0.2
    with pytest.raises(ValueError, match="the methods are: oi"):
        make_method("4dvarx")
    with pytest.raises(ValueError, match="extkf takes inflation, not n_members"):
        make_method("extkf", n_members=3)
    with pytest.raises(ValueError, match="oi takes no settings"):
        make_method("oi", b_scale=1.0)
