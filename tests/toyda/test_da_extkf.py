"""The extended Kalman filter: Joseph update, inflation on DAPPER's sakov2012 Lorenz-63 setup, 1000
cycles, missing data, and the fixed lecture cycle lorenz63.assimilate(covariance_update=True)."""

import dataclasses

import numpy as np
import pytest

from toyda import lorenz63
from toyda.da import ExtKF, make_method
from toyda.da.diagnostics import score
from toyda.da.extkf import joseph_update
from toyda.experiment import Experiment, get_model, twin

L63 = Experiment(get_model("lorenz63"), obs_every=25, sigma_o=np.sqrt(2), n_obs=250, burn_in=16, seed=0)


def test_joseph_update_is_the_kalman_update():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 5))
    P, x = A @ A.T + 0.1 * np.eye(5), rng.normal(size=5)
    o = np.array([True, False, True, True, False])
    y = rng.normal(size=3)
    H, R = np.eye(5)[o], 0.3 ** 2 * np.eye(3)
    K = P @ H.T @ np.linalg.inv(H @ P @ H.T + R)
    xa, Pa = joseph_update(x, P, y, o, 0.3)
    assert np.allclose(xa, x + K @ (y - H @ x), atol=1e-12)
    assert np.allclose(Pa, (np.eye(5) - K @ H) @ P, atol=1e-12) and np.array_equal(Pa, Pa.T)


def test_joseph_update_keeps_a_singular_covariance_positive():
    v = np.array([1.0, 2.0, -1.0])
    P = np.outer(v, v) * 1e3                               # rank one
    _, Pa = joseph_update(np.zeros(3), P, np.array([0.5]), np.array([True, False, False]), 1.0)
    assert np.linalg.eigvalsh(Pa).min() > -1e-10 * np.abs(Pa).max()


@pytest.mark.parametrize("seed", [0, 1])
def test_extkf_needs_inflation_on_sakov2012(seed):
    # 25 RK4 steps between observations: the linearised covariance is too small without inflation,
    # the filter trusts its forecast and loses the truth; DAPPER tunes the inflation (0.87–0.91 there)
    exp = dataclasses.replace(L63, seed=seed)
    obs = twin(exp)
    plain = score(ExtKF(inflation=1.0).assimilate(exp, obs, np.random.default_rng(seed)), obs, 16)
    inflated = score(ExtKF(inflation=4.0).assimilate(exp, obs, np.random.default_rng(seed)), obs, 16)
    assert plain["rmse_a"] > 4.0 and plain["spread_a"] < 0.2 * plain["rmse_a"]    # lost and overconfident
    assert inflated["rmse_a"] < 1.0 and 0.5 < inflated["spread_a"] / inflated["rmse_a"] < 2.0


def test_extkf_runs_1000_cycles():
    exp = dataclasses.replace(L63, n_obs=1000)
    obs = twin(exp)
    res = ExtKF(inflation=4.0).assimilate(exp, obs, np.random.default_rng(0))
    assert res.diverged_at is None and res.x_a.shape == (1000, 3)
    assert np.all(np.isfinite(res.spread_a)) and np.all(res.spread_a > 0)
    assert score(res, obs, 16)["rmse_a"] < 1.0            # DAPPER 0.87–0.91


def test_extkf_on_sakov2008_lorenz96():
    exp = Experiment(get_model("lorenz96"), obs_every=1, sigma_o=1.0, n_obs=200, burn_in=5, seed=0)
    obs = twin(exp)
    assert score(ExtKF(inflation=1.1).assimilate(exp, obs, np.random.default_rng(0)), obs, 5)["rmse_a"] < 0.3


def test_extkf_with_missing_observations_and_without_x0():
    exp = dataclasses.replace(L63, n_obs=200)
    obs = twin(exp)
    y = obs.y.copy()
    y[np.random.default_rng(1).random(y.shape) < 0.2] = np.nan
    y[::8] = np.nan
    gappy = dataclasses.replace(obs, y=y, x0_true=None)     # data mode: start from the climatology
    res = ExtKF(inflation=4.0).assimilate(exp, gappy, np.random.default_rng(0))
    assert res.diverged_at is None and np.array_equal(res.x_a[::8], res.x_f[::8])
    assert score(res, gappy, 16)["rmse_a"] < 1.5


@pytest.mark.parametrize("inflation", [0.9, float("nan")])
def test_bad_inflation_is_refused(inflation):
    with pytest.raises(ValueError, match="inflation .* is not allowed: must be a finite number >= 1"):
        make_method("extkf", inflation=inflation)


@pytest.mark.parametrize("subset", ["xyz", "xz"])
def test_lorenz63_assimilate_with_covariance_update_runs_1000_steps(subset):
    # used to fail with "B must be symmetric positive definite, smallest eigenvalue -6.65e-17"
    rng = np.random.default_rng(0)
    x = lorenz63.simulate(n_steps=1000, dt=0.01)
    y = x + np.sqrt(2) * rng.standard_normal(x.shape)
    y[:, [c not in subset for c in "xyz"]] = np.nan
    y[::7] = np.nan
    y[0] = x[0]
    run = lorenz63.assimilate(y, np.sqrt(2), x[0], 0.1 * np.eye(3), model="lorenz63", covariance_update=True)
    assert np.sqrt(np.mean((run.x_a[100:] - x[100:]) ** 2)) < 0.5 * np.sqrt(2)
    lam = np.linalg.eigvalsh(run.A)
    assert np.all(lam.min(axis=1) > -1e-12 * lam.max(axis=1)) and np.array_equal(run.A, np.swapaxes(run.A, 1, 2))


def test_check_spd_reports_the_right_eigenvalue():
    from toyda.var3d import check_spd

    with pytest.raises(ValueError, match="smallest eigenvalue -0.001$"):
        check_spd(np.diag([1.0, -1e-3, 2.0]), "B")
    # a covariance propagated by the tangent-linear of Lorenz-63 without observations: positive in
    # exact arithmetic, numerically singular; the message prints its own smallest eigenvalue
    P = np.eye(3)
    x = lorenz63.simulate(n_steps=500)[-1]
    for _ in range(3000):
        x, M = lorenz63.step_with_tlm(x, 0.01)
        P = M @ P @ M.T
    P = 0.5 * (P + P.T)
    lam = np.linalg.eigvalsh(P)
    with pytest.raises(ValueError) as err:
        check_spd(P, "B")
    assert f"smallest eigenvalue {lam[0]:.3g}" in str(err.value)
    assert ("numerically singular" in str(err.value)) == (lam[0] > 0)
