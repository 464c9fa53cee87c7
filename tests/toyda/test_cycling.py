"""The shared lecture loops (toyda.cycling): the sequential cycle and ORIGEN's iteration, checked
against closed forms, and the lecture modules' results against a direct loop."""

from __future__ import annotations

import numpy as np
import pytest

from toyda import cycling, oscillator as osc, var3d


def test_random_walk_kalman_filter_reaches_the_riccati_fixed_point():
    """Persistence + q on a scalar observed every step: B∞ solves B = Bσo²/(B+σo²) + q."""
    so, q = 0.5, 0.04
    y = np.random.default_rng(0).standard_normal((400, 1))
    seq = cycling.sequential(y, np.array([so]), np.zeros(1), np.array([[4.0]]), covariance_update=True,
                             Q=np.array([[q]]))
    b_inf = 0.5 * (q + np.sqrt(q**2 + 4 * q * so**2))
    assert seq.B[-1, 0, 0] == pytest.approx(b_inf, rel=1e-10)
    assert seq.K[-1, 0, 0] == pytest.approx(b_inf / (b_inf + so**2), rel=1e-10)


def test_without_model_error_the_gain_decays_like_one_over_k():
    """q = 0, ρ = 1: 1/B_k = 1/B_0 + k/σo², the filter divergence of the lecture's cycle."""
    so, sb = 0.3, 0.8
    y = np.zeros((200, 1))
    seq = cycling.sequential(y, np.array([so]), np.zeros(1), np.array([[sb**2]]), covariance_update=True)
    k = np.arange(200)
    np.testing.assert_allclose(seq.B[:, 0, 0], 1 / (1 / sb**2 + k / so**2), rtol=1e-10)
    inflated = cycling.sequential(y, np.array([so]), np.zeros(1), np.array([[sb**2]]), covariance_update=True,
                                  inflation=1.1)
    assert inflated.K[-1, 0, 0] > 5 * seq.K[-1, 0, 0]


def test_unobserved_times_and_components_leave_the_background():
    y = np.array([[1.0, np.nan], [np.nan, np.nan], [np.nan, 2.0]])
    seq = cycling.sequential(y, np.array([0.5, 0.5]), np.zeros(2), np.eye(2))
    np.testing.assert_array_equal(seq.n_obs, [1, 0, 1])
    np.testing.assert_array_equal(seq.x_a[1], seq.x_b[1])
    np.testing.assert_array_equal(seq.K[0][:, 1], 0.0)
    assert np.isnan(seq.innovation[0, 1]) and seq.innovation[0, 0] == pytest.approx(1.0)
    assert seq.x_a[0, 0] == pytest.approx(1 / 1.25)                      # gain 1/(1+0.25)


def test_masked_analysis_equals_the_reduced_operator():
    rng = np.random.default_rng(1)
    L = rng.standard_normal((3, 3))
    B = L @ L.T + np.eye(3)
    xb, y = rng.standard_normal(3), np.array([0.3, np.nan, -1.2])
    H, R, yf = cycling.masked_problem(y, np.array([0.4, 0.4, 0.4]))
    full = var3d.analysis(xb, yf, H, B, R)
    reduced = var3d.analysis(xb, y[[0, 2]], np.eye(3)[[0, 2]], B, 0.16 * np.eye(2))
    np.testing.assert_allclose(full.x_a, reduced.x_a, atol=1e-14)
    np.testing.assert_allclose(full.A, reduced.A, atol=1e-14)


def test_origen_with_the_same_observations_counts_them_each_cycle():
    """Fully observed, covariance update: after c cycles A = 1/(1/σb² + (c+1)/σo²)."""
    so, sb, T = 0.5, 1.0, 30
    y = np.random.default_rng(2).standard_normal((T, 2))
    it = cycling.origen(lambda c: y, 6, np.full(2, so), sb**2 * np.eye(2), start="batched")
    c = np.arange(6)
    np.testing.assert_allclose(it.sigma_a, np.sqrt(1 / (1 / sb**2 + (c + 1) / so**2)), rtol=1e-10)
    assert it.first is None and it.increment[-1] < it.increment[1]


def test_origen_cycle_zero_is_the_sequential_cycle():
    rng = np.random.default_rng(3)
    x_true = osc.truth(120)
    y, which = osc.observe(x_true, "random", 0.3, rng)
    Y = np.full((120, 2), np.nan)
    Y[np.arange(120), which] = y
    it = cycling.origen(lambda c: Y, 3, np.full(2, 0.3), 0.64 * np.eye(2), x0_b=np.zeros(2))
    direct = osc.cycle_3dvar(y, which, 0.8, 0.3)
    np.testing.assert_allclose(it.x_a[0], direct.x_a, atol=1e-14)
    with pytest.raises(ValueError, match="start must be"):
        cycling.origen(lambda c: Y, 2, np.full(2, 0.3), np.eye(2), start="parallel")


def test_bad_observations_are_refused():
    with pytest.raises(ValueError, match="shape"):
        cycling.check_observations(np.zeros((4, 2)), 3)
    with pytest.raises(ValueError, match="inf"):
        cycling.check_observations(np.array([[np.inf, 0, 0]]), 3)
    with pytest.raises(ValueError, match="all NaN"):
        cycling.check_observations(np.full((2, 3), np.nan), 3)
    with pytest.raises(ValueError, match="inflation must be"):
        osc.cycle_3dvar(np.zeros(3), np.zeros(3, int), covariance_update=True, inflation=0.9)
    with pytest.raises(ValueError, match="q must be"):
        osc.cycle_3dvar(np.zeros(3), np.zeros(3, int), covariance_update=True, q=-1)
