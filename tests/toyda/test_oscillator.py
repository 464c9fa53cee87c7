"""ORIGEN on the oscillator: truth, observations, 3D-Var cycle, sequential rounds, ORIGEN."""

import numpy as np
import pytest

from toyda import metrics, oscillator as osc

SIGMA_O = osc.DEFAULTS.sigma_o
SIGMA_B = osc.DEFAULTS.sigma_b


@pytest.fixture(scope="module")
def x_true():
    return osc.truth(osc.DEFAULTS.n_steps)


def test_truth_on_unit_circle(x_true):
    assert x_true.shape == (100, 2)
    np.testing.assert_allclose(np.linalg.norm(x_true, axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(x_true[0], [1.0, 0.0])
    np.testing.assert_allclose(x_true[25], [0.0, 1.0], atol=1e-15)     # θ = π/2 at k = n/4


@pytest.mark.parametrize("pattern", osc.PATTERNS)
def test_observe_picks_the_right_component(x_true, pattern):
    y, which = osc.observe(x_true, pattern, 1e-9, np.random.default_rng(0))
    assert y.shape == which.shape == (100,)
    np.testing.assert_allclose(y, x_true[np.arange(100), which], atol=1e-7)
    if pattern == "x1":
        assert np.all(which == 0)
    elif pattern == "x2":
        assert np.all(which == 1)
    elif pattern == "alternating":
        np.testing.assert_array_equal(which, np.arange(100) % 2)
    else:
        assert 30 < which.sum() < 70                                    # both, about half each


def test_observation_noise_has_sigma_o(x_true):
    xt = np.tile(x_true, (50, 1))
    y, which = osc.observe(xt, "random", 0.2, np.random.default_rng(1))
    assert np.std(y - xt[np.arange(len(y)), which]) == pytest.approx(0.2, rel=0.05)


# ----------------------------------------------------------------------------- 3D-Var cycle


def test_cycle_fixed_B_gain_and_persistence(x_true):
    y, which = osc.observe(x_true, "random", SIGMA_O, np.random.default_rng(2))
    cyc = osc.cycle_3dvar(y, which, SIGMA_B, SIGMA_O)
    g = SIGMA_B**2 / (SIGMA_B**2 + SIGMA_O**2)
    np.testing.assert_allclose(cyc.K[np.arange(100), which], g)
    np.testing.assert_allclose(cyc.K[np.arange(100), 1 - which], 0.0)
    np.testing.assert_allclose(cyc.x_b[1:], cyc.x_a[:-1])                # persistence
    np.testing.assert_allclose(cyc.x_b[0], [0.0, 0.0])
    # analyses are pulled towards the obs: much better than the first background everywhere
    assert metrics.rmse(cyc.x_a[20:], x_true[20:]) < 0.25


def test_cycle_covariance_update_stops_listening(x_true):
    """Persistence + B ← A without model error: the gain decays and the analysis lags."""
    y, which = osc.observe(x_true, "alternating", SIGMA_O, np.random.default_rng(3))
    fixed = osc.cycle_3dvar(y, which, SIGMA_B, SIGMA_O)
    updated = osc.cycle_3dvar(y, which, SIGMA_B, SIGMA_O, covariance_update=True)
    gain = np.abs(updated.K).sum(axis=1)
    assert np.all(np.diff(gain[::2]) < 0) and gain[-1] < 0.05
    assert metrics.rmse(updated.x_a[50:], x_true[50:]) > 2 * metrics.rmse(fixed.x_a[50:], x_true[50:])
    # model-error variance q keeps the filter listening
    with_q = osc.cycle_3dvar(y, which, SIGMA_B, SIGMA_O, covariance_update=True, q=0.003)
    assert metrics.rmse(with_q.x_a[50:], x_true[50:]) < 0.5 * metrics.rmse(updated.x_a[50:], x_true[50:])


# ----------------------------------------------------------------------------- two rounds


def test_sequential_rounds_converge_in_two(x_true):
    res = osc.sequential_rounds(x_true, rng=np.random.default_rng(4))
    (x1_r1, x2_r1), (x1_r2, x2_r2) = res.rmse
    assert x1_r1 < 0.1                      # round 1: x1 aligns with the truth
    assert x2_r1 == pytest.approx(np.sqrt(0.5), rel=1e-12)   # x2 untouched: still the x0_b = 0
    assert x1_r2 == x1_r1                   # round 2 does not touch x1
    assert x2_r2 < 0.1                      # round 2: x2 aligns as well
    np.testing.assert_allclose(res.rmse[1], metrics.rmse(res.x_a2, x_true, axis=0))


# ----------------------------------------------------------------------------- ORIGEN


def test_origen_fixed_B_plateaus(x_true):
    rec = osc.origen_reconstruction(x_true, 40, SIGMA_B, SIGMA_O, covariance_update=False,
                                    rng=np.random.default_rng(5))
    assert rec.x_a.shape == (40, 100, 2) and rec.rmse.shape == (40,)
    late, earlier = rec.rmse[-10:].mean(), rec.rmse[-20:-10].mean()
    assert late > 0.9 * earlier             # no further improvement over the last cycles
    g = SIGMA_B**2 / (SIGMA_B**2 + SIGMA_O**2)
    plateau = SIGMA_O * np.sqrt(g / (2 - g))        # stationary error of the fixed-weight average
    assert late == pytest.approx(plateau, rel=0.2)
    assert late > 0.5 * SIGMA_O
    np.testing.assert_allclose(rec.B, np.broadcast_to(SIGMA_B**2 * np.eye(2), (100, 2, 2)))


def test_origen_covariance_update_converges(x_true):
    rec = osc.origen_reconstruction(x_true, 40, SIGMA_B, SIGMA_O, covariance_update=True,
                                    rng=np.random.default_rng(5))
    fixed = osc.origen_reconstruction(x_true, 40, SIGMA_B, SIGMA_O, covariance_update=False,
                                      rng=np.random.default_rng(5))
    assert rec.rmse[-1] < 0.25 * SIGMA_O
    assert rec.rmse[-1] < 0.4 * fixed.rmse[-1]
    assert rec.rmse[19] < 0.4 * SIGMA_O
    # decreasing roughly like 1/√cycles: quadrupling the cycles about halves the error
    assert 1.5 < rec.rmse[9] / rec.rmse[39] < 2.6
    # the filter's own error estimate is consistent with the actual error at the end
    assert rec.sigma_a[-1] == pytest.approx(rec.rmse[-1], rel=0.3)
    # B_k stays diagonal (coordinate observations, diagonal B) and has shrunk far below σ_b²
    np.testing.assert_array_equal(rec.B[:, 0, 1], 0.0)
    assert np.sqrt(np.mean(np.trace(rec.B, axis1=1, axis2=2) / 2)) < 0.25 * SIGMA_O


def test_origen_last_cycle_observations(x_true):
    rec = osc.origen_reconstruction(x_true, 3, rng=np.random.default_rng(6), pattern="alternating")
    np.testing.assert_array_equal(rec.which, (np.arange(100) + 2) % 2)
    assert np.std(rec.y - x_true[np.arange(100), rec.which]) < 3 * SIGMA_O


def test_origen_is_reproducible(x_true):
    a = osc.origen_reconstruction(x_true, 5, rng=np.random.default_rng(7), covariance_update=True)
    b = osc.origen_reconstruction(x_true, 5, rng=np.random.default_rng(7), covariance_update=True)
    np.testing.assert_array_equal(a.x_a, b.x_a)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma_b": 0.0}, "sigma_b must be a finite number > 0, got 0.0"),
    ({"sigma_o": -1.0}, "sigma_o must be a finite number > 0, got -1.0"),
    ({"n_cycles": 0}, "n_cycles must be an integer >= 1, got 0"),
    ({"pattern": "diagonal"}, "pattern must be one of .*'random'.*got 'diagonal'"),
    ({"rng": 42}, "rng must be a numpy.random.Generator"),
])
def test_origen_bad_arguments(x_true, kwargs, match):
    args = {"rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(ValueError, match=match):
        osc.origen_reconstruction(x_true, **args)


def test_bad_arguments_elsewhere(x_true):
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1, got -5"):
        osc.truth(-5)
    with pytest.raises(ValueError, match="obs_pattern must be one of"):
        osc.observe(x_true, "sometimes", 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x_true must have shape \(T, 2\)"):
        osc.observe(np.zeros((10, 3)), "x1", 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"which must contain only 0 \(x1\) and 1 \(x2\)"):
        osc.cycle_3dvar(np.zeros(3), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"x0_b must be a finite array of shape \(2,\)"):
        osc.cycle_3dvar(np.zeros(3), np.array([0, 1, 1]), x0_b=np.zeros(3))
    with pytest.raises(ValueError, match="q must be a finite number >= 0"):
        osc.cycle_3dvar(np.zeros(3), np.array([0, 1, 1]), covariance_update=True, q=-1.0)
