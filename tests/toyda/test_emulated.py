"""The learned emulator as a DA forecast model (toyda.emulated): network steps, tangent-linear and
adjoint through the network, the clock check, and DA methods run with it against the true model."""

import dataclasses

import numpy as np
import pytest
import torch

from toyda import emulated, emulator, lorenz63
from toyda.da import make_method
from toyda.da.diagnostics import score
from toyda.da.var4d import cost_and_gradient, cost_torch
from toyda.experiment import Experiment, get_model, twin

DT = 0.01
# the sakov2012 setup (obs every 25 steps, σo = √2), 300 observation times
EXP = Experiment(get_model("lorenz63", dt=DT), obs_every=25, sigma_o=np.sqrt(2.0), n_obs=300, burn_in=16.0)


@pytest.fixture(scope="module")
def trained():
    truth = lorenz63.simulate(lorenz63.X0, 3000, DT)[500:]
    return emulator.train_emulator(truth, DT, epochs=60, rollout_steps=5, rollout_epochs=10, seed=0,
                                   config=emulator.EmulatorConfig(hidden=64), device="cpu")


@pytest.fixture(scope="module")
def model(trained):
    return emulated.emulated_model(trained)


@pytest.fixture(scope="module")
def x_att(model):
    return lorenz63.simulate(lorenz63.X0, 700, DT)[-1]


def test_the_model_is_the_network_batched_over_members(trained, model):
    E = lorenz63.simulate(lorenz63.X0, 600, DT)[-10:]                       # 10 states on the attractor
    with torch.no_grad():
        ref = trained.net.double()(torch.as_tensor(E)).numpy()             # one torch step
    trained.net.float()
    assert np.allclose(model.step(E), ref, rtol=0, atol=1e-12)
    batched = model.forecast(E, 25)
    assert np.allclose(batched, [model.forecast(e, 25) for e in E], rtol=0, atol=1e-12)
    assert np.allclose(batched, emulator.forecast(trained, E, 25)[:, -1], atol=1e-3)   # float32 original
    xt = torch.tensor(E[0], dtype=torch.float64)
    assert np.allclose(model.step_torch(xt).numpy(), model.step(E[0]), atol=1e-12)
    assert model.dt == DT and model.n == 3 and model.fine_tuned


def test_tangent_linear_is_first_order_accurate_through_the_network(model, x_att):
    dx = np.random.default_rng(0).standard_normal(3)
    xn, M = model.forecast_tl(x_att, 25)
    assert np.allclose(xn, model.forecast(x_att, 25), atol=1e-12)
    xn_t, M_t = model.forecast_tl_torch(x_att, 25)                        # autodiff through the network
    assert np.allclose(xn_t, xn, atol=1e-12) and np.allclose(M_t, M, rtol=1e-9, atol=1e-12 * np.abs(M).max())
    assert np.allclose(M @ dx, model.forecast_jvp(x_att, 25, dx), rtol=1e-10, atol=1e-12)
    errs = [np.linalg.norm(model.forecast(x_att + e * dx, 25) - xn - e * M @ dx) for e in (1e-2, 5e-3, 2.5e-3)]
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    assert all(3.0 < r < 5.0 for r in ratios), (errs, ratios)               # O(ε²): halving ε quarters it
    assert errs[-1] < 1e-3 * np.linalg.norm(2.5e-3 * M @ dx)


def test_adjoint_dot_product_identity_through_the_network(model, x_att):
    rng = np.random.default_rng(1)
    dx, w = rng.standard_normal(3), rng.standard_normal(3)
    _, M = model.forecast_tl(x_att, 25)
    adj = model.forecast_vjp(x_att, 25, w)                                  # Mᵀ w by reverse mode
    lhs, rhs = model.forecast_jvp(x_att, 25, dx) @ w, dx @ adj              # ⟨M δx, w⟩ = ⟨δx, Mᵀ w⟩
    assert abs(lhs - rhs) < 1e-12 * np.linalg.norm(M, 2) * np.linalg.norm(dx) * np.linalg.norm(w)
    assert np.allclose(M.T @ w, adj, rtol=1e-10, atol=1e-12)


def test_4dvar_gradient_through_the_network_equals_autograd(model):
    obs = emulated.on_emulator_clock(twin(dataclasses.replace(EXP, n_obs=3)), DT, model.dt)
    exp = dataclasses.replace(EXP, model=model)
    xb = obs.x0_true + np.random.default_rng(2).standard_normal(3)
    Binv = np.linalg.inv(2.0 * np.eye(3))
    x0 = xb + 0.3 * np.random.default_rng(3).standard_normal(3)
    J, g = cost_and_gradient(model, x0, xb, Binv, obs.y, obs.steps, exp.sigma_o)
    xt = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    Jt = cost_torch(model, xt, xb, Binv, obs.y, obs.steps, exp.sigma_o)
    Jt.backward()
    assert Jt.item() == pytest.approx(J, rel=1e-10)
    assert np.allclose(xt.grad.numpy(), g, rtol=1e-8, atol=1e-8 * np.abs(g).max())


def test_a_dt_that_does_not_divide_the_observation_interval_is_refused():
    obs = twin(dataclasses.replace(EXP, n_obs=5))
    with pytest.raises(ValueError, match=r"dt = 0\.03 does not divide the observation interval 0\.25"):
        emulated.on_emulator_clock(obs, DT, 0.03)
    with pytest.raises(ValueError, match=r"dt = 0\.5 does not divide"):
        emulated.on_emulator_clock(obs, DT, 0.5)                            # longer than the interval
    assert np.all(emulated.on_emulator_clock(obs, DT, 0.05).steps == 5)


def test_climatology_is_the_emulators_own_free_run(model):
    mu, C = model.climatology()
    true_mu, true_C = EXP.model.climatology()
    assert mu.shape == (3,) and C.shape == (3, 3) and np.all(np.linalg.eigvalsh(C) > 0)
    # the emulator's free run stays on a butterfly of the right size (not a fixed point or a blow-up);
    # its own chaos, not the truth's: this one visits one lobe more often (x, y means ≈ 3 against 0)
    sd = np.sqrt(np.diag(true_C))
    assert np.all(np.abs(mu - true_mu) < 0.5 * sd), (mu, true_mu)
    assert np.all((0.5 < np.diag(C) / np.diag(true_C)) & (np.diag(C) / np.diag(true_C) < 2.0)), (np.diag(C), np.diag(true_C))
    assert model.climatology()[0] is mu                                     # computed once


def test_etkf_with_the_emulator_tracks_the_truth_nearly_as_well_as_the_true_model(model):
    obs = twin(EXP)
    method = make_method("etkf", n_members=10, inflation=1.1)
    true = score(method.assimilate(EXP, obs, np.random.default_rng(5)), obs, EXP.burn_in)["rmse_a"]
    exp_e = dataclasses.replace(EXP, model=model, observed="all")
    obs_e = emulated.on_emulator_clock(obs, DT, model.dt)
    res = method.assimilate(exp_e, obs_e, np.random.default_rng(5))
    emu = score(res, obs_e, EXP.burn_in)["rmse_a"]
    assert res.diverged_at is None and np.isfinite(emu)
    no_model = score(make_method("oi").assimilate(EXP, obs, np.random.default_rng(5)), obs, EXP.burn_in)["rmse_a"]
    # measured (this small emulator, seed 0): true model 0.51, emulator 0.81, optimal interpolation
    # (no forecast model) 1.23, σo 1.41. Model error costs accuracy, but the learned model is worth
    # having: its analysis beats assimilation without a model and the observations alone
    assert true < emu < no_model < EXP.sigma_o, (true, emu, no_model)
    assert emu < 0.75 * no_model, (emu, no_model)


@pytest.mark.parametrize("name", ["extkf", "4dvar", "3dvar"])
def test_tangent_linear_and_static_methods_run_with_the_emulator(model, name):
    exp = dataclasses.replace(EXP, n_obs=40, burn_in=2.0)
    obs = twin(exp)
    settings = {"extkf": {"inflation": 4.0}, "4dvar": {"window": 1}, "3dvar": {}}[name]
    res = make_method(name, **settings).assimilate(dataclasses.replace(exp, model=model, observed="all"),
                                                   emulated.on_emulator_clock(obs, DT, model.dt),
                                                   np.random.default_rng(0))
    rmse = score(res, obs, exp.burn_in)["rmse_a"]
    assert res.diverged_at is None and rmse < EXP.sigma_o, rmse
