"""3D-Var / Kalman analysis: closed forms, variational = gain form, covariance properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toyda import lorenz63, oscillator, var3d


def random_spd(rng: np.random.Generator, n: int, cond: float = 50.0) -> np.ndarray:
    """A random SPD matrix with eigenvalues in [1, cond]."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * rng.uniform(1.0, cond, n)) @ Q.T


def random_problem(seed: int, n: int, p: int):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n), rng.standard_normal(p), rng.standard_normal((p, n)),
            random_spd(rng, n), random_spd(rng, p))


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("component", [0, 1])
def test_scalar_gain_closed_form(component):
    sigma_b, sigma_o = 0.3, 0.2
    H = np.eye(2)[[component]]
    K = var3d.gain(sigma_b**2 * np.eye(2), H, np.array([[sigma_o**2]]))
    expected = np.zeros((2, 1))
    expected[component, 0] = sigma_b**2 / (sigma_b**2 + sigma_o**2)
    np.testing.assert_allclose(K, expected, rtol=1e-14, atol=1e-15)


def test_scalar_analysis_closed_form():
    x_b, y = np.array([0.5, -0.2]), np.array([1.0])
    sb2, so2 = 0.09, 0.04
    an = var3d.analysis(x_b, y, np.array([[1.0, 0.0]]), sb2 * np.eye(2), np.array([[so2]]))
    g = sb2 / (sb2 + so2)
    np.testing.assert_allclose(an.x_a, [0.5 + g * 0.5, -0.2])
    np.testing.assert_allclose(an.innovation, [0.5])
    np.testing.assert_allclose(an.A, np.diag([(1 - g) * sb2, sb2]))


def test_gain_uses_correlations_in_B():
    """An observation of x1 moves x2 through the off-diagonal of B."""
    B = np.array([[1.0, 0.8], [0.8, 1.0]])
    an = var3d.analysis(np.zeros(2), np.array([1.0]), np.array([[1.0, 0.0]]), B, np.array([[1.0]]))
    np.testing.assert_allclose(an.x_a, [0.5, 0.4])


# ----------------------------------------------------------------------------- variational form


def test_analysis_zeroes_the_gradient_and_minimises_cost():
    x_b, y, H, B, R = random_problem(1, 4, 3)
    an = var3d.analysis(x_b, y, H, B, R)
    g = var3d.cost_gradient(an.x_a, x_b, y, H, B, R)
    assert np.linalg.norm(g) < 1e-10 * np.linalg.norm(var3d.cost_gradient(x_b, x_b, y, H, B, R))
    j_a = var3d.cost(an.x_a, x_b, y, H, B, R)
    rng = np.random.default_rng(2)
    for _ in range(20):
        assert var3d.cost(an.x_a + 0.01 * rng.standard_normal(4), x_b, y, H, B, R) > j_a


def test_cost_gradient_matches_finite_differences():
    x_b, y, H, B, R = random_problem(3, 3, 2)
    x = np.array([0.3, -1.0, 2.0])
    eps = 1e-6
    fd = np.array([(var3d.cost(x + eps * e, x_b, y, H, B, R)
                    - var3d.cost(x - eps * e, x_b, y, H, B, R)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(var3d.cost_gradient(x, x_b, y, H, B, R), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("method", ["normal", "bfgs"])
def test_minimise_3dvar_equals_kalman_analysis(method):
    x_b, y, H, B, R = random_problem(4, 5, 3)
    x_var = var3d.minimise_3dvar(x_b, y, H, B, R, method=method)
    x_kal = var3d.analysis(x_b, y, H, B, R).x_a
    np.testing.assert_allclose(x_var, x_kal, rtol=1e-6, atol=1e-8)


def test_analysis_covariance_is_inverse_hessian():
    x_b, y, H, B, R = random_problem(5, 4, 2)
    A = var3d.analysis(x_b, y, H, B, R).A
    np.testing.assert_allclose(A @ var3d.hessian(H, B, R), np.eye(4), atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6), p=st.integers(1, 5))
def test_property_3dvar_equals_kalman_and_A_below_B(seed, n, p):
    x_b, y, H, B, R = random_problem(seed, n, p)
    an = var3d.analysis(x_b, y, H, B, R)
    np.testing.assert_allclose(var3d.minimise_3dvar(x_b, y, H, B, R), an.x_a,
                               rtol=1e-7, atol=1e-7 * (1 + np.abs(an.x_a).max()))
    np.testing.assert_allclose(an.A, an.A.T, atol=1e-12 * np.abs(B).max())
    # A ≤ B in the Loewner order: B − A = K H B is positive semi-definite, and A > 0
    assert np.linalg.eigvalsh(B - an.A).min() > -1e-9 * np.abs(B).max()
    assert np.linalg.eigvalsh(an.A).min() > 0


def test_batched_analysis_equals_loop():
    rng = np.random.default_rng(6)
    T, n, p = 7, 3, 2
    x_b, y, H = rng.standard_normal((T, n)), rng.standard_normal((T, p)), rng.standard_normal((T, p, n))
    B = np.stack([random_spd(rng, n) for _ in range(T)])
    R = random_spd(rng, p)                                         # broadcast over T
    batch = var3d.analysis(x_b, y, H, B, R)
    for k in range(T):
        one = var3d.analysis(x_b[k], y[k], H[k], B[k], R)
        np.testing.assert_allclose(batch.x_a[k], one.x_a, rtol=1e-12)
        np.testing.assert_allclose(batch.A[k], one.A, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- adjoint tests


def _adjoint_check(H: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, v = rng.standard_normal(H.shape[1]), rng.standard_normal(H.shape[0])
    assert np.dot(H @ x, v) == pytest.approx(np.dot(x, H.T @ v), rel=1e-13, abs=1e-14)


def test_adjoint_oscillator_operators():
    Hs = oscillator.observation_operators(np.array([0, 1, 1, 0]))
    assert Hs.shape == (4, 1, 2)
    for k, H in enumerate(Hs):
        _adjoint_check(H, k)


@pytest.mark.parametrize("subset", lorenz63.SUBSETS + ("xyz",))
def test_adjoint_lorenz63_operators(subset):
    H = lorenz63.observation_operator(subset)
    assert H.shape == (len(subset), 3)
    _adjoint_check(H, len(subset))


# ----------------------------------------------------------------------------- errors


def test_rejects_non_spd_B():
    with pytest.raises(ValueError, match="B must be symmetric positive definite"):
        var3d.analysis(np.zeros(2), np.zeros(1), np.array([[1.0, 0.0]]),
                       np.array([[1.0, 2.0], [2.0, 1.0]]), np.eye(1))


def test_rejects_asymmetric_R():
    with pytest.raises(ValueError, match="R must be symmetric"):
        var3d.gain(np.eye(2), np.eye(2), np.array([[1.0, 0.5], [0.0, 1.0]]))


def test_rejects_wrong_H_shape():
    with pytest.raises(ValueError, match=r"H must have shape \(\.\.\., p, n\) = \(\.\.\., 1, 2\)"):
        var3d.analysis(np.zeros(2), np.zeros(1), np.eye(2), np.eye(2), np.eye(1))


def test_rejects_unknown_method_and_nan():
    x_b, y, H, B, R = random_problem(0, 2, 1)
    with pytest.raises(ValueError, match="method must be 'normal' or 'bfgs', got 'cg'"):
        var3d.minimise_3dvar(x_b, y, H, B, R, method="cg")
    with pytest.raises(ValueError, match="must be finite"):
        var3d.analysis(x_b, np.array([np.nan]), H, B, R)
