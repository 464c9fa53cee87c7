"""The DA methods lab (toyda.experiment, toyda.da): models, tangent-linears, and each method's
expected behaviour on short twins with fixed seeds. The DAPPER reference numbers are in `make bench`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from toyda.da import METHODS, make_method
from toyda.da.diagnostics import crps_ensemble, rank_histogram, score
from toyda.da.etkf import etkf_analysis
from toyda.da.letkf import gaspari_cohn
from toyda.da.var4d import cost_and_gradient
from toyda.experiment import Experiment, Observations, get_model, twin


def l63_twin(n_obs=300, seed=3, **kw):
    exp = Experiment(get_model("lorenz63"), obs_every=25, sigma_o=np.sqrt(2), n_obs=n_obs, burn_in=4, seed=seed, **kw)
    return exp, twin(exp)


def l96_twin(n_obs=300, seed=3):
    exp = Experiment(get_model("lorenz96"), obs_every=1, sigma_o=1.0, n_obs=n_obs, burn_in=5, seed=seed)
    return exp, twin(exp)


def run(name, exp, obs, **settings):
    result = make_method(name, **settings).assimilate(exp, obs, np.random.default_rng(1))
    return result, score(result, obs, exp.burn_in)


@pytest.mark.parametrize("name", ["lorenz63", "lorenz96"])
def test_tangent_linear_of_the_rk4_step_converges_quadratically(name):
    m = get_model(name)
    rng = np.random.default_rng(0)
    x = m.forecast(m.x0 + rng.standard_normal(m.n), 200)
    dx = rng.standard_normal(m.n)
    x1, M = m.step_tl(x)
    errs = [np.linalg.norm(m.step(x + e * dx) - x1 - e * M @ dx) for e in (1e-2, 1e-3)]
    assert errs[1] < errs[0] / 50                      # O(ε²): a factor 100 per decade of ε
    np.testing.assert_allclose(x1, m.step(x))


@pytest.mark.parametrize("name", ["lorenz63", "lorenz96"])
def test_torch_twin_agrees_and_its_gradient_is_the_adjoint(name):
    m = get_model(name)
    x = m.forecast(m.x0 + 0.1, 100)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = m.step_torch(xt)
    np.testing.assert_allclose(yt.detach().numpy(), m.step(x), rtol=1e-13, atol=1e-12)
    dy = np.random.default_rng(1).standard_normal(m.n)
    (g,) = torch.autograd.grad(yt @ torch.tensor(dy), xt)
    _, M = m.step_tl(x)
    np.testing.assert_allclose(g.numpy(), M.T @ dy, rtol=1e-10, atol=1e-10)     # ⟨M dx, dy⟩ = ⟨dx, Mᵀ dy⟩


def test_lorenz96_advection_conserves_energy():
    x = np.random.default_rng(2).standard_normal(40)
    adv = (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1)
    assert abs(x @ adv) < 1e-12


def test_climatology_is_cached_and_sensible():
    m = get_model("lorenz63")
    mu, C = m.climatology()
    assert m.climatology()[0] is mu
    assert 20 < mu[2] < 28 and np.all(np.linalg.eigvalsh(C) > 0)


def test_four_dvar_gradient_matches_finite_differences():
    exp, obs = l63_twin(n_obs=3)
    m = exp.model
    xb, x0 = obs.x0_true + 0.5, obs.x0_true - 0.3
    Binv = np.linalg.inv(0.1 * m.climatology()[1])
    J, g = cost_and_gradient(m, x0, xb, Binv, obs.y, obs.steps, exp.sigma_o)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-6
        Jp = cost_and_gradient(m, x0 + e, xb, Binv, obs.y, obs.steps, exp.sigma_o)[0]
        Jm = cost_and_gradient(m, x0 - e, xb, Binv, obs.y, obs.steps, exp.sigma_o)[0]
        assert (Jp - Jm) / 2e-6 == pytest.approx(g[i], rel=1e-4, abs=1e-4)


def test_etkf_mean_is_the_kalman_analysis_with_the_ensemble_covariance():
    rng = np.random.default_rng(4)
    E = rng.standard_normal((8, 5)) + np.arange(5)
    o = np.array([True, False, True, True, False])
    y = rng.standard_normal(3)
    Ea = etkf_analysis(E, y, o, 0.7)
    P = np.cov(E.T)
    H = np.eye(5)[o]
    K = P @ H.T @ np.linalg.inv(H @ P @ H.T + 0.49 * np.eye(3))
    np.testing.assert_allclose(Ea.mean(0), E.mean(0) + K @ (y - E.mean(0)[o]), atol=1e-10)
    np.testing.assert_allclose(np.cov(Ea.T), (np.eye(5) - K @ H) @ P, atol=1e-10)   # the square root is exact


def test_gaspari_cohn():
    assert gaspari_cohn(np.array([0.0]))[0] == pytest.approx(1.0)
    assert np.all(gaspari_cohn(np.array([2.0, 2.5, 10])) == 0)
    r = np.linspace(0, 2, 201)
    assert np.all(np.diff(gaspari_cohn(r)) <= 1e-12)


def test_ensemble_kalman_filters_beat_3dvar_on_lorenz63():
    exp, obs = l63_twin()
    _, var = run("3dvar", exp, obs, b_scale=0.1)
    _, enkf = run("enkf", exp, obs, n_members=10, inflation=1.4)
    _, etkf = run("etkf", exp, obs, n_members=10, inflation=1.1)
    assert enkf["rmse_a"] < var["rmse_a"] and etkf["rmse_a"] < var["rmse_a"]
    assert etkf["rmse_a"] < enkf["rmse_a"]              # the deterministic square root wins at small N


def test_without_inflation_the_ensemble_spread_collapses():
    exp, obs = l63_twin()
    _, none = run("etkf", exp, obs, n_members=10, inflation=1.0)
    _, some = run("etkf", exp, obs, n_members=10, inflation=1.1)
    assert none["spread_a"] < 0.6 * none["rmse_a"]      # overconfident: the filter stops listening
    assert some["spread_a"] > 0.9 * some["rmse_a"]      # inflated: the spread matches the error
    assert some["rmse_a"] < 0.6 * none["rmse_a"]


def test_extkf_needs_inflation_and_runs_a_thousand_cycles():
    exp, obs = l63_twin(n_obs=1000)
    plain, s_plain = run("extkf", exp, obs)
    inflated, s_infl = run("extkf", exp, obs, inflation=4.0)
    assert inflated.diverged_at is None and len(inflated.x_a) == 1000
    assert s_infl["rmse_a"] < 1.0                       # DAPPER: 0.87–0.91
    assert s_plain["rmse_a"] > 1.5 * s_infl["rmse_a"]   # without inflation it loses track


def test_letkf_is_stable_on_lorenz96_where_the_global_etkf_with_7_members_is_not():
    exp, obs = l96_twin()
    _, local = run("letkf", exp, obs, n_members=7, inflation=1.04, localisation_radius=4)
    _, glob = run("etkf", exp, obs, n_members=7, inflation=1.04)
    assert local["rmse_a"] < 0.35                       # DAPPER: 0.22 on 1,000+ times
    assert glob.get("rmse_a", np.inf) > 2 * local["rmse_a"]


def test_particle_filter_and_4dvar_track_lorenz63():
    exp, obs = l63_twin()
    pf, s_pf = run("pf", exp, obs, n_members=100)
    _, s_4d = run("4dvar", exp, obs)
    _, s_oi = run("oi", exp, obs)
    assert s_pf["rmse_a"] < 0.8 and s_4d["rmse_a"] < 1.0 < s_oi["rmse_a"]
    assert pf.info["ess"].min() >= 1


@pytest.mark.parametrize("name", list(METHODS))
def test_missing_observations_work_in_every_method(name):
    if name == "letkf":
        exp, obs = l96_twin(n_obs=40)
    else:
        exp, obs = l63_twin(n_obs=40)
    y = obs.y.copy()
    y[np.random.default_rng(5).random(y.shape) < 0.3] = np.nan
    y[7] = np.nan                                       # a time with nothing observed
    gappy = Observations(obs.t, y, obs.steps, obs.x_true, obs.x0_true)
    result, s = run(name, dataclasses.replace(exp, burn_in=0.0), gappy)
    assert np.all(np.isfinite(result.x_a)) and np.isfinite(s["rmse_a"])


def test_observed_subsets_and_bad_settings_are_refused_clearly():
    m = get_model("lorenz63")
    obs = twin(Experiment(m, obs_every=5, observed="xz", n_obs=10))
    assert np.isnan(obs.y[:, 1]).all() and np.isfinite(obs.y[:, [0, 2]]).all()
    with pytest.raises(ValueError, match="n_members"):
        make_method("enkf", n_members=1)
    with pytest.raises(ValueError, match="inflation"):
        make_method("etkf", inflation=0.9)
    with pytest.raises(ValueError, match="window"):
        make_method("4dvar", window=0)
    with pytest.raises(ValueError, match="observed"):
        Experiment(m, observed="every:0")
    with pytest.raises(ValueError, match="localisation_radius"):
        make_method("letkf").assimilate(Experiment(m, n_obs=5), twin(Experiment(m, n_obs=5)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown method"):
        make_method("kalman_smoother")


def test_scores_crps_and_rank_histogram():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 3))
    E = rng.standard_normal((500, 20, 3))               # a reliable ensemble: a flat rank histogram
    counts = rank_histogram(E, x)
    assert counts.sum() == 1500 and counts.max() < 2.5 * counts.mean()
    assert crps_ensemble(E, x) == pytest.approx(0.57, abs=0.05)   # CRPS of N(0,1) forecasts ≈ 1/√π
