"""Lorenz-96 and the models' numerics: tendency, RK4 order, tangent-linear, torch twin, kernels."""

import numpy as np
import pytest
import torch

from toyda import lorenz96 as l96
from toyda.experiment import get_model, rk4, rk4_tl


def test_tendency_known_values():
    # x = F everywhere is a fixed point; by hand for x_i = i on a ring of 5 with F = 8:
    # f_0 = (x_1 − x_3) x_4 − x_0 + 8 = (1 − 3)·4 − 0 + 8 = 0, f_2 = (x_3 − x_0) x_1 − x_2 + 8 = 3 − 2 + 8 = 9
    assert np.allclose(l96.tendency(8.0 * np.ones(40), 8.0), 0.0)
    f = l96.tendency(np.arange(5.0), 8.0)
    assert f[0] == pytest.approx(0.0) and f[2] == pytest.approx(9.0)
    assert f[4] == pytest.approx((0 - 2) * 3 - 4 + 8)


def test_advection_conserves_energy():
    # Σ x_i (x_{i+1} − x_{i−2}) x_{i−1} = 0, so d/dt ½|x|² = −|x|² + F Σ x_i
    x = np.random.default_rng(0).normal(2, 4, (6, 40))
    lhs = np.sum(x * l96.tendency(x, 8.0), axis=-1)
    assert np.allclose(lhs, -np.sum(x ** 2, -1) + 8.0 * np.sum(x, -1), rtol=1e-12, atol=1e-9)


def test_tendency_vectorised_over_leading_axes():
    x = np.random.default_rng(1).normal(size=(2, 3, 40))
    f = l96.tendency(x)
    assert f.shape == x.shape
    assert np.array_equal(f[1, 2], l96.tendency(x[1, 2]))


def test_jacobian_matches_finite_differences():
    x = np.random.default_rng(2).normal(2, 3, 40)
    J, eps = l96.jacobian(x), 1e-6
    fd = np.stack([(l96.tendency(x + eps * e) - l96.tendency(x - eps * e)) / (2 * eps) for e in np.eye(40)], axis=1)
    assert np.max(np.abs(J - fd)) < 1e-7


@pytest.mark.parametrize("name, T", [("lorenz63", 0.5), ("lorenz96", 0.5)])
def test_rk4_is_fourth_order(name, T):
    m = get_model(name)
    x0 = m.forecast(m.x0, 100)
    ref = x0
    for _ in range(int(T / 0.0005)):
        ref = rk4(m.tendency, ref, 0.0005)

    def err(dt):
        x = x0
        for _ in range(int(round(T / dt))):
            x = rk4(m.tendency, x, dt)
        return np.max(np.abs(x - ref))

    ratio = err(0.01) / err(0.005)
    assert 13 < ratio < 19, ratio                          # 2⁴ = 16 for a global error O(dt⁴)


@pytest.mark.parametrize("name", ["lorenz63", "lorenz96"])
def test_tangent_linear_error_is_second_order(name):
    m = get_model(name)
    rng = np.random.default_rng(3)
    x = m.forecast(m.x0 + rng.standard_normal(m.n), 200)
    dx = rng.standard_normal(m.n)
    _, M = m.forecast_tl(x, 10)
    errs = [np.linalg.norm(m.forecast(x + e * dx, 10) - m.forecast(x, 10) - e * M @ dx) for e in (1e-3, 5e-4, 2.5e-4)]
    assert errs[0] / errs[1] == pytest.approx(4, rel=0.05) and errs[1] / errs[2] == pytest.approx(4, rel=0.05)


@pytest.mark.parametrize("name", ["lorenz63", "lorenz96"])
def test_compiled_kernels_agree_with_the_numpy_reference(name):
    m = get_model(name)
    rng = np.random.default_rng(4)
    E = m.x0 + rng.standard_normal((2, 3, m.n))            # any leading axes
    ref = E
    for _ in range(17):
        ref = m.step(ref)
    assert np.allclose(m.forecast(E, 17), ref, rtol=0, atol=1e-12)
    x, M = m.forecast_tl(E[0, 0], 5)
    xr, Mr = E[0, 0], np.eye(m.n)
    for _ in range(5):
        xr, Mk = rk4_tl(m.tendency, m.jacobian, xr, m.dt)
        Mr = Mk @ Mr
    assert np.allclose(x, xr, atol=1e-12) and np.allclose(M, Mr, atol=1e-12)
    assert np.array_equal(m.forecast(E, 0), E)


@pytest.mark.parametrize("name", ["lorenz63", "lorenz96"])
def test_torch_twin_agrees_to_round_off(name):
    m = get_model(name)
    E = m.x0 + np.random.default_rng(5).standard_normal((4, m.n))
    xt = torch.tensor(E, dtype=torch.float64)
    for _ in range(20):
        xt = m.step_torch(xt)
    assert np.max(np.abs(xt.numpy() - m.forecast(E, 20))) < 1e-11


def test_lorenz96_step_function_and_bad_settings():
    x = get_model("lorenz96").x0
    assert np.allclose(l96.step(x, 0.05), get_model("lorenz96").step(x))
    with pytest.raises(ValueError, match="n .*integer >= 4"):
        get_model("lorenz96", n=3)
    with pytest.raises(ValueError, match="dt must be"):
        get_model("lorenz96", dt=-0.1)
