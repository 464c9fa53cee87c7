"""Compiled (numba) multi-step RK4 forecasts of Lorenz-63 and Lorenz-96, and of their tangent-linear.

The readable numpy versions (:func:`toyda.experiment.rk4`, :func:`toyda.experiment.rk4_tl` on
:mod:`toyda.lorenz63` / :mod:`toyda.lorenz96` tendencies) stay the reference; these kernels run the
same arithmetic member by member without temporaries, and the tests check that both agree to
round-off. A DA cycle spends nearly all its time in many short forecasts of a small state, where
numpy's per-call overhead dominates: that is what these remove.

Shapes: ``X (M, n)`` C-contiguous float64 (members as rows); ``P (n, n)`` a matrix whose columns
are propagated by the tangent-linear model.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _l63_f(x0, x1, x2, sigma, rho, beta):
    return sigma * (x1 - x0), x0 * (rho - x2) - x1, x0 * x1 - beta * x2


@numba.njit(cache=True)
def l63_forecast(X, n_steps, dt, sigma, rho, beta):
    """``X (M, 3)`` after ``n_steps`` RK4 steps of ``dt`` (a new array)."""
    out = X.copy()
    h = 0.5 * dt
    for m in range(out.shape[0]):
        a, b, c = out[m, 0], out[m, 1], out[m, 2]
        for _ in range(n_steps):
            k1a, k1b, k1c = _l63_f(a, b, c, sigma, rho, beta)
            k2a, k2b, k2c = _l63_f(a + h * k1a, b + h * k1b, c + h * k1c, sigma, rho, beta)
            k3a, k3b, k3c = _l63_f(a + h * k2a, b + h * k2b, c + h * k2c, sigma, rho, beta)
            k4a, k4b, k4c = _l63_f(a + dt * k3a, b + dt * k3b, c + dt * k3c, sigma, rho, beta)
            a = a + dt / 6.0 * (k1a + 2.0 * k2a + 2.0 * k3a + k4a)
            b = b + dt / 6.0 * (k1b + 2.0 * k2b + 2.0 * k3b + k4b)
            c = c + dt / 6.0 * (k1c + 2.0 * k2c + 2.0 * k3c + k4c)
        out[m, 0], out[m, 1], out[m, 2] = a, b, c
    return out


@numba.njit(cache=True)
def _l96_f(x, F, out):
    n = x.shape[0]
    for i in range(n):
        out[i] = (x[(i + 1) % n] - x[i - 2]) * x[i - 1] - x[i] + F


@numba.njit(cache=True)
def l96_forecast(X, n_steps, dt, F):
    """``X (M, n)`` after ``n_steps`` RK4 steps of ``dt`` (a new array)."""
    out = X.copy()
    n = out.shape[1]
    k1, k2, k3, k4, tmp = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for m in range(out.shape[0]):
        x = out[m]
        for _ in range(n_steps):
            _l96_f(x, F, k1)
            for i in range(n):
                tmp[i] = x[i] + 0.5 * dt * k1[i]
            _l96_f(tmp, F, k2)
            for i in range(n):
                tmp[i] = x[i] + 0.5 * dt * k2[i]
            _l96_f(tmp, F, k3)
            for i in range(n):
                tmp[i] = x[i] + dt * k3[i]
            _l96_f(tmp, F, k4)
            for i in range(n):
                x[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
    return out


# ----------------------------------------------------------------------------- tangent-linear
# The TLM of one RK4 step applied to the columns of P: dk1 = J(x1) P, dk2 = J(x2) (P + dt/2 dk1),
# dk3 = J(x3) (P + dt/2 dk2), dk4 = J(x4) (P + dt dk3), P ← P + dt/6 (dk1 + 2 dk2 + 2 dk3 + dk4),
# with x1..x4 the RK4 stage states. By linearity this is M_step @ P, the product that
# ``rk4_tl`` forms with dense stage Jacobians.

@numba.njit(cache=True)
def _l63_jv(x, V, sigma, rho, beta, out):
    """``out = J(x) V`` for the Lorenz-63 Jacobian, V (3, c)."""
    for j in range(V.shape[1]):
        out[0, j] = sigma * (V[1, j] - V[0, j])
        out[1, j] = (rho - x[2]) * V[0, j] - V[1, j] - x[0] * V[2, j]
        out[2, j] = x[1] * V[0, j] + x[0] * V[1, j] - beta * V[2, j]


@numba.njit(cache=True)
def _l96_jv(x, V, F, out):
    """``out = J(x) V`` for the Lorenz-96 Jacobian (4 non-zeros a row), V (n, c)."""
    n = x.shape[0]
    for i in range(n):
        ip, im, imm = (i + 1) % n, i - 1, i - 2
        a, b = x[im], x[ip] - x[imm]
        for j in range(V.shape[1]):
            out[i, j] = a * (V[ip, j] - V[imm, j]) + b * V[im, j] - V[i, j]


@numba.njit(cache=True)
def _stage(kind, s, S, k, d, p0, p1, p2):
    """One RK4 stage of the state and its TL: ``k = f(s)``, ``d = J(s) S``."""
    if kind == 0:
        k[0], k[1], k[2] = _l63_f(s[0], s[1], s[2], p0, p1, p2)
        _l63_jv(s, S, p0, p1, p2, d)
    else:
        _l96_f(s, p0, k)
        _l96_jv(s, S, p0, d)


@numba.njit(cache=True)
def _rk4_tl_steps(kind, x, P, n_steps, dt, p0, p1, p2):
    """Shared TL stepping: ``kind`` 0 = Lorenz-63 (σ, ρ, β = p0, p1, p2), 1 = Lorenz-96 (F = p0)."""
    x = x.copy()
    P = P.copy()
    k1, k2, k3, k4 = np.empty_like(x), np.empty_like(x), np.empty_like(x), np.empty_like(x)
    d1, d2, d3, d4 = np.empty_like(P), np.empty_like(P), np.empty_like(P), np.empty_like(P)
    h = 0.5 * dt
    for _ in range(n_steps):
        _stage(kind, x, P, k1, d1, p0, p1, p2)
        _stage(kind, x + h * k1, P + h * d1, k2, d2, p0, p1, p2)
        _stage(kind, x + h * k2, P + h * d2, k3, d3, p0, p1, p2)
        _stage(kind, x + dt * k3, P + dt * d3, k4, d4, p0, p1, p2)
        x += dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        P += dt / 6.0 * (d1 + 2.0 * d2 + 2.0 * d3 + d4)
    return x, P


def l63_forecast_tl(x, P, n_steps, dt, sigma, rho, beta):
    """``(x_n, M P)``: the state after ``n_steps`` and ``P (3, c)`` propagated by the TLM."""
    return _rk4_tl_steps(0, x, P, n_steps, dt, sigma, rho, beta)


def l96_forecast_tl(x, P, n_steps, dt, F):
    """``(x_n, M P)`` for Lorenz-96, ``P (n, c)``."""
    return _rk4_tl_steps(1, x, P, n_steps, dt, F, 0.0, 0.0)
