"""OI, 3D-Var and 4D-Var: the analysis equations, the 4D-Var gradient/TL/adjoint checks, short twins
on DAPPER's sakov2012 Lorenz-63 and sakov2008 Lorenz-96 setups, missing data, bad settings."""

import dataclasses

import numpy as np
import pytest
import torch

from toyda import var3d as lecture_var3d
from toyda.da import OI, Var3D, Var4D, make_method
from toyda.da.diagnostics import score
from toyda.da.var3d import blue, static_b
from toyda.da.var4d import cost, cost_and_gradient, cost_torch, lbfgs, window_trajectory
from toyda.experiment import Experiment, get_model, twin

L63 = Experiment(get_model("lorenz63"), obs_every=25, sigma_o=np.sqrt(2), n_obs=250, burn_in=16, seed=0)
L96 = Experiment(get_model("lorenz96"), obs_every=1, sigma_o=1.0, n_obs=200, burn_in=5, seed=0)


def _rmse(method, exp, obs=None, seed=0):
    obs = twin(exp) if obs is None else obs
    res = method.assimilate(exp, obs, np.random.default_rng(seed))
    assert res.diverged_at is None
    return score(res, obs, exp.burn_in)["rmse_a"]


def _with_gaps(obs, fraction=0.2, every=8, seed=1):
    """Observations with a fraction of the values missing (NaN) and every ``every``-th time empty."""
    y = obs.y.copy()
    y[np.random.default_rng(seed).random(y.shape) < fraction] = np.nan
    y[::every] = np.nan
    return dataclasses.replace(obs, y=y)


def test_blue_is_the_lecture_analysis():
    rng = np.random.default_rng(0)
    B = static_b(L96, "climatology", 0.05)
    xb, o = rng.normal(size=(3, 40)), rng.random(40) < 0.5
    y = rng.normal(size=(3, int(o.sum())))
    H = np.eye(40)[o]
    ref = lecture_var3d.analysis(xb, y, H, B, 0.7 ** 2 * np.eye(len(y[0]))).x_a
    assert np.allclose(blue(xb, y, o, B, 0.7), ref, atol=1e-12)


def test_sakov2012_lorenz63_short_twin_ordering():
    # DAPPER: OptInterp 1.25, 3D-Var (B = 0.1 C_clim) 1.03, 4D-Var window 1 0.79
    oi, v3, v4 = (_rmse(m, L63) for m in (OI(), Var3D(b_scale=0.1), Var4D(window=1, b_scale=0.1)))
    assert 1.1 < oi < 1.4 and 0.9 < v3 < 1.15 and 0.7 < v4 < 0.9
    assert v4 < v3 < oi


def test_sakov2008_lorenz96_short_twin():
    # DAPPER: OptInterp 0.95, 3D-Var 0.41 (xB = 0.02)
    oi, v3 = _rmse(OI(), L96), _rmse(Var3D(b_scale=0.02), L96)
    assert 0.85 < oi < 1.05 and 0.35 < v3 < 0.46
    assert _rmse(Var3D(background="identity", b_scale=0.2), L96) < 0.7


@pytest.mark.parametrize("method, bound", [(OI(), 3.0), (Var3D(), 1.6), (Var4D(), 1.3), (Var4D(window=2), 1.3),
                                           (Var4D(minimiser="lbfgs"), 1.3)],
                         ids=["oi", "3dvar", "4dvar", "4dvar-window2", "4dvar-lbfgs"])
def test_missing_observations(method, bound):
    # 20 % of the values and every 8th time missing; with everything observed these methods score
    # 1.31, 1.06, 0.83, 0.61 and 0.83 here, the climatological mean ≈ 8
    exp = dataclasses.replace(L63, n_obs=120)
    gappy = _with_gaps(twin(exp))
    res = method.assimilate(exp, gappy, np.random.default_rng(0))
    assert res.x_a.shape == (exp.n_obs, 3) and np.all(np.isfinite(res.x_a))
    seen = np.isfinite(gappy.y).any(axis=1)
    err = np.sqrt(np.mean((res.x_a - gappy.x_true) ** 2, axis=1))[seen][40:]
    assert err.mean() < bound
    if isinstance(method, OI):
        assert np.allclose(res.x_a[::8], exp.model.climatology()[0])   # nothing observed: the mean
    elif isinstance(method, Var3D):
        assert np.array_equal(res.x_a[::8], res.x_f[::8])   # nothing observed: the analysis is the forecast


def test_oi_with_partial_observations_uses_the_climatological_covariance():
    # observing x only still moves y through the x–y correlation of the attractor
    exp = dataclasses.replace(L63, observed="x")
    obs = twin(exp)
    res = OI().assimilate(exp, obs, np.random.default_rng(0))
    mu = exp.model.climatology()[0]
    assert np.corrcoef(res.x_a[:, 1] - mu[1], obs.x_true[:, 1])[0, 1] > 0.5


# ----------------------------------------------------------------------------- 4D-Var gradient checks


def _window(exp=L63, L=3, seed=0):
    obs = _with_gaps(twin(dataclasses.replace(exp, n_obs=L)), fraction=0.3, seed=seed)
    obs = dataclasses.replace(obs, y=np.where(np.isnan(obs.y).all(1, keepdims=True), obs.x_true, obs.y))
    m = exp.model
    Binv = np.linalg.inv(static_b(exp, "climatology", 0.1))
    xb = obs.x0_true + np.random.default_rng(seed).standard_normal(m.n)
    return m, xb, Binv, obs.y, obs.steps


@pytest.mark.parametrize("exp", [L63, L96], ids=["lorenz63", "lorenz96"])
def test_4dvar_gradient_matches_finite_differences(exp):
    m, xb, Binv, y, steps = _window(exp)
    x0 = xb + 0.3 * np.random.default_rng(1).standard_normal(m.n)
    J, g = cost_and_gradient(m, x0, xb, Binv, y, steps, exp.sigma_o)
    assert J == pytest.approx(cost(m, x0, xb, Binv, y, steps, exp.sigma_o), rel=1e-12)
    d = np.random.default_rng(2).standard_normal(m.n)
    for eps in (1e-4, 1e-5):
        fd = (cost(m, x0 + eps * d, xb, Binv, y, steps, exp.sigma_o)
              - cost(m, x0 - eps * d, xb, Binv, y, steps, exp.sigma_o)) / (2 * eps)
        assert fd == pytest.approx(g @ d, rel=1e-6)


@pytest.mark.parametrize("exp", [L63, L96], ids=["lorenz63", "lorenz96"])
def test_adjoint_gradient_equals_torch_autograd(exp):
    m, xb, Binv, y, steps = _window(exp)
    x0 = xb + 0.3 * np.random.default_rng(1).standard_normal(m.n)
    xt = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    Jt = cost_torch(m, xt, xb, Binv, y, steps, exp.sigma_o)
    Jt.backward()
    J, g = cost_and_gradient(m, x0, xb, Binv, y, steps, exp.sigma_o)
    assert Jt.item() == pytest.approx(J, rel=1e-11)
    assert np.allclose(xt.grad.numpy(), g, rtol=1e-9, atol=1e-9 * np.abs(g).max())


@pytest.mark.parametrize("exp", [L63, L96], ids=["lorenz63", "lorenz96"])
def test_adjoint_dot_product_identity(exp):
    # ⟨M δx, δy⟩ with M δx from the compiled TLM = ⟨δx, Mᵀ δy⟩ with Mᵀ δy by autograd (the adjoint)
    m = exp.model
    rng = np.random.default_rng(3)
    x = m.forecast(m.x0 + rng.standard_normal(m.n), 100)
    dx, dy = rng.standard_normal(m.n), rng.standard_normal(m.n)
    _, M = m.forecast_tl(x, 25)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = xt
    for _ in range(25):
        out = m.step_torch(out)
    (adj,) = torch.autograd.grad(out, xt, grad_outputs=torch.tensor(dy))
    lhs, rhs = (M @ dx) @ dy, dx @ adj.numpy()
    assert abs(lhs - rhs) < 1e-12 * np.linalg.norm(M, 2) * np.linalg.norm(dx) * np.linalg.norm(dy)


def test_lbfgs_minimises_rosenbrock():
    def rosenbrock(x):
        r = x[1] - x[0] ** 2
        return (1 - x[0]) ** 2 + 100 * r ** 2, np.array([-2 * (1 - x[0]) - 400 * x[0] * r, 200 * r])

    x, iterations = lbfgs(rosenbrock, np.array([-1.2, 1.0]), max_iter=200)
    assert np.allclose(x, 1.0, atol=1e-6) and iterations < 60


def test_gauss_newton_and_lbfgs_reach_the_same_minimum():
    m, xb, Binv, y, steps = _window(L63, L=1)
    traj = window_trajectory(m, xb, steps)[0]
    obs = twin(dataclasses.replace(L63, n_obs=1))
    obs = dataclasses.replace(obs, x0_true=xb, y=y, x_true=traj)
    exp = dataclasses.replace(L63, n_obs=1)
    costs = [Var4D(minimiser=mz).assimilate(exp, obs, np.random.default_rng(0)).info["cost"][0]
             for mz in ("gauss-newton", "lbfgs")]
    assert costs[0] == pytest.approx(costs[1], rel=1e-6)


def test_4dvar_cost_decreases_from_the_background():
    res = Var4D(window=2).assimilate(L63, twin(L63), np.random.default_rng(0))
    J_a, J_b = res.info["cost"], res.info["cost_b"]
    assert J_a.shape == J_b.shape == (125,) and np.all(np.isfinite(J_a))
    assert np.all(J_a <= J_b) and np.median(J_a / J_b) < 0.5


@pytest.mark.parametrize("name, settings, match", [
    ("3dvar", {"background": "diagonal"}, "background = 'diagonal'.*'climatology' or 'identity'"),
    ("3dvar", {"b_scale": 0.0}, "b_scale"), ("3dvar", {"b_scale": float("nan")}, "b_scale"),
    ("4dvar", {"window": 0}, "window = 0.*integer >= 1"), ("4dvar", {"window": 1.5}, "window"),
    ("4dvar", {"minimiser": "adam"}, "minimiser"), ("4dvar", {"b_scale": -1.0}, "b_scale")])
def test_bad_settings_are_refused(name, settings, match):
    with pytest.raises(ValueError, match=match):
        make_method(name, **settings)
