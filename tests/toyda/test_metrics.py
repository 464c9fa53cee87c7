"""Skill scores."""

import numpy as np
import pytest

from toyda import metrics


def test_rmse_known_values_and_axis():
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    b = np.zeros((2, 2))
    assert metrics.rmse(a, b) == pytest.approx(np.sqrt(25 / 4))
    np.testing.assert_allclose(metrics.rmse(a, b, axis=-1), [0.0, np.sqrt(12.5)])
    np.testing.assert_allclose(metrics.rmse(a, b, axis=0), [np.sqrt(4.5), np.sqrt(8.0)])
    assert isinstance(metrics.rmse(a, b), float)


def test_rmse_of_gaussian_noise_is_sigma():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000)
    assert metrics.rmse(x + 0.3 * rng.standard_normal(1000), x) == pytest.approx(0.3, rel=0.05)


def test_correlation_properties():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 5))
    assert metrics.correlation(a, 3 * a + 2) == pytest.approx(1.0)
    assert metrics.correlation(a, -a) == pytest.approx(-1.0)
    b = rng.standard_normal((20, 5))
    assert metrics.correlation(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_spread_of_ensemble():
    rng = np.random.default_rng(2)
    E = 0.5 * rng.standard_normal((4000, 3))
    assert metrics.spread(E) == pytest.approx(0.5, rel=0.03)
    Et = np.stack([E, 2 * E])
    np.testing.assert_allclose(metrics.spread(Et), [metrics.spread(E), 2 * metrics.spread(E)])


def test_errors_name_the_arguments():
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got \(2,\) and \(3,\)"):
        metrics.rmse(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="non-zero variance"):
        metrics.correlation(np.ones(4), np.arange(4.0))
    with pytest.raises(ValueError, match=r"ensemble must have shape \(N, n\) or \(T, N, n\) with N >= 2"):
        metrics.spread(np.zeros((1, 3)))
