"""Lorenz-63: RK4 order, tangent linear, observations, NaN-masked assimilation, ORIGEN, twin."""

import numpy as np
import pytest

from toyda import lorenz63 as l63
from toyda import metrics


@pytest.fixture(scope="module")
def x_true():
    return l63.simulate(l63.X0, l63.DEFAULTS.n_steps, l63.DEFAULTS.dt)


# ----------------------------------------------------------------------------- model


def test_tendency_known_value_and_ensemble():
    np.testing.assert_allclose(l63.tendency(np.array([1.0, 2.0, 3.0])),
                               [10.0, 1.0 * 25.0 - 2.0, 2.0 - 8.0])
    E = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(l63.tendency(E), np.stack([l63.tendency(e) for e in E]))


def test_rk4_fourth_order_convergence():
    t_end, x0 = 0.5, l63.X0
    ref = l63.simulate(x0, 3200, t_end / 3200)[-1]
    errs = [np.linalg.norm(l63.simulate(x0, n, t_end / n)[-1] - ref) for n in (50, 100, 200)]
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    for r in ratios:
        assert 13.0 < r < 19.0, ratios                  # 2⁴ = 16 when halving dt


def test_simulate_shapes_and_ensemble():
    one = l63.simulate(l63.X0, 10)
    assert one.shape == (11, 3)
    np.testing.assert_array_equal(one[0], l63.X0)
    E = l63.X0 + np.random.default_rng(1).standard_normal((4, 3))
    ens = l63.simulate(E, 10)
    assert ens.shape == (11, 4, 3)
    np.testing.assert_allclose(ens[:, 2], l63.simulate(E[2], 10), rtol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tangent_linear_vs_finite_differences(seed):
    rng = np.random.default_rng(seed)
    x = l63.X0 + 5 * rng.standard_normal(3)
    eps = 1e-6
    fd = np.stack([(l63.tendency(x + eps * e) - l63.tendency(x - eps * e)) / (2 * eps)
                   for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(l63.tangent_linear(x), fd, rtol=1e-7, atol=1e-6)


def test_step_tlm_vs_finite_differences():
    x = np.array([-5.0, 3.0, 20.0])
    x1, M = l63.step_with_tlm(x, 0.01)
    np.testing.assert_allclose(x1, l63.step(x, 0.01), rtol=1e-14)
    eps = 1e-6
    fd = np.stack([(l63.step(x + eps * e) - l63.step(x - eps * e)) / (2 * eps) for e in np.eye(3)],
                  axis=-1)
    np.testing.assert_allclose(M, fd, rtol=1e-7, atol=1e-8)


# ----------------------------------------------------------------------------- observations


def test_observation_operator_rows():
    np.testing.assert_array_equal(l63.observation_operator("xz"), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(l63.observation_operator("y"), [[0, 1, 0]])
    with pytest.raises(ValueError, match="subset must be one of .* got 'w'"):
        l63.observation_operator("w")


def test_twin_observations_mask_and_noise(x_true):
    y = l63.twin_observations(x_true, 1.0, np.random.default_rng(2), every=2)
    assert y.shape == x_true.shape
    obs = ~np.isnan(y)
    assert not obs[1::2].any()                                   # only every 2nd time
    counts = obs[::2].sum(axis=1)
    assert set(np.unique(counts)) == {1, 2}                      # one of x, y, z, xy, xz, yz
    assert np.std((y - x_true)[obs]) == pytest.approx(1.0, rel=0.1)
    assert 0.4 < obs[::2].mean(axis=0).min() / 1.0 and obs[::2].mean(axis=0).max() < 0.6


# ----------------------------------------------------------------------------- assimilate


def test_assimilate_user_nan_masked_array(x_true):
    """A user's own observations: x observed every 5 steps, z every 10, y never."""
    rng = np.random.default_rng(3)
    y = np.full_like(x_true, np.nan)
    y[::5, 0] = x_true[::5, 0] + rng.standard_normal(x_true[::5].shape[0])
    y[::10, 2] = x_true[::10, 2] + rng.standard_normal(x_true[::10].shape[0])
    x0_b = x_true[0] + np.array([2.0, -2.0, 3.0])
    run = l63.assimilate(y, 1.0, x0_b, 4.0 * np.eye(3), model="lorenz63")
    free = l63.simulate(x0_b, x_true.shape[0] - 1)
    assert run.x_a.shape == run.x_b.shape == (x_true.shape[0], 3)
    np.testing.assert_array_equal(run.n_obs[1:5], 0)
    np.testing.assert_array_equal(run.x_a[1:5], run.x_b[1:5])    # nothing observed, no update
    np.testing.assert_allclose(run.x_b[1], l63.step(run.x_a[0]))  # L63 forecast between steps
    # the (chaotic) free run is lost, the assimilation keeps track, y included (via dynamics)
    late = slice(200, None)
    assert metrics.rmse(run.x_a[late], x_true[late]) < 0.3 * metrics.rmse(free[late], x_true[late])
    assert metrics.rmse(run.x_a[late, 1], x_true[late, 1]) < 2.0


def test_assimilate_persistence_with_covariance_update():
    y = np.array([[1.0, np.nan, np.nan], [np.nan, np.nan, np.nan], [2.0, np.nan, 3.0]])
    run = l63.assimilate(y, 1.0, np.zeros(3), np.eye(3), covariance_update=True)
    np.testing.assert_allclose(run.x_a[0], [0.5, 0, 0])
    np.testing.assert_allclose(run.B[1], np.diag([0.5, 1, 1]))   # B_{k+1} = A_k (M = I)
    np.testing.assert_allclose(run.B[2], run.A[1])
    np.testing.assert_allclose(run.x_a[2], [0.5 + (2 - 0.5) / 3, 0, 1.5])  # gain 0.5/1.5, 1/2


@pytest.mark.parametrize("y, kwargs, match", [
    (np.full((4, 3), np.nan), {}, "at least one observation, got all NaN"),
    (np.zeros((4, 2)), {}, r"y must have shape \(T, 3\)"),
    (np.zeros((4, 3)), {"model": "gfs"}, "model must be 'persistence' or 'lorenz63', got 'gfs'"),
    (np.zeros((4, 3)), {"B0": -np.eye(3)}, "B0 must be symmetric positive definite"),
    (np.zeros((4, 3)), {"sigma_o": 0.0}, "sigma_o must be finite and > 0"),
])
def test_assimilate_bad_arguments(y, kwargs, match):
    args = {"sigma_o": 1.0, "x0_b": np.zeros(3), "B0": np.eye(3)} | kwargs
    with pytest.raises(ValueError, match=match):
        l63.assimilate(y, **args)


# ----------------------------------------------------------------------------- ORIGEN


def test_origen_converges(x_true):
    rec = l63.origen_reconstruction(x_true, 20, 1.0, np.random.default_rng(4))
    assert rec.x_a.shape == (20, x_true.shape[0], 3)
    assert rec.rmse[0] > 1.0                                   # persistence cycle: poor
    assert rec.rmse[-1] < 0.45                                 # well below σ_o = 1
    assert np.all(np.diff(rec.rmse[1:]) < 0.02)                # (almost) monotone decrease
    assert 1.5 < rec.rmse[4] / rec.rmse[19] < 2.6              # about 1/√cycles
    assert rec.increment[-1] < 0.2 * rec.increment[1]
    fixed = l63.origen_reconstruction(x_true, 20, 1.0, np.random.default_rng(4),
                                      covariance_update=False)
    assert fixed.rmse[-1] > 1.5 * rec.rmse[-1]                 # fixed B plateaus higher


def test_origen_with_user_observations_reuses_them(x_true):
    y = l63.twin_observations(x_true, 1.0, np.random.default_rng(5), subsets=("xyz",))
    rec = l63.origen_reconstruction(y=y, n_cycles=15, sigma_o=1.0)
    assert rec.rmse is None
    np.testing.assert_array_equal(rec.y, y)
    # counting the same observations again and again converges onto the observations
    assert metrics.rmse(rec.x_a[-1], y) < 0.3 * metrics.rmse(rec.x_a[1], y)
    with_truth = l63.origen_reconstruction(x_true, 15, 1.0, y=y)
    assert with_truth.rmse[-1] == pytest.approx(1.0, rel=0.2)      # → obs error, not 0


def test_origen_bad_arguments(x_true):
    with pytest.raises(ValueError, match="give x_true .* or y"):
        l63.origen_reconstruction(None, 5, 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_cycles must be an integer >= 1, got 0"):
        l63.origen_reconstruction(x_true, 0, 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="subset must be one of"):
        l63.origen_reconstruction(x_true, 2, 1.0, np.random.default_rng(0), subsets=("xw",))


# ----------------------------------------------------------------------------- twin


def test_var3d_twin_short_run_beats_observation_error():
    twin = l63.var3d_twin(n_cycles=200, seed=1)
    assert twin.obs_index.shape == (200,) and twin.x_true.shape == (200 * 25 + 1, 3)
    assert float(twin.rmse_mean) < 0.85 * np.sqrt(2.0)
    assert float(twin.rmse_mean) == pytest.approx(1.04, rel=0.2)
    assert twin.rmse_b[65:].mean() > float(twin.rmse_mean)     # analysis improves the forecast
    np.testing.assert_allclose(twin.B, 0.1 * np.cov(twin.x_true.T))


def test_var3d_twin_bad_arguments():
    with pytest.raises(ValueError, match="obs_every must be an integer >= 1, got 0"):
        l63.var3d_twin(n_cycles=10, obs_every=0)
    with pytest.raises(ValueError, match="burn_in_time must be shorter than the run"):
        l63.var3d_twin(n_cycles=10, burn_in_time=16.0)
