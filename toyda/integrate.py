"""Generic explicit time stepping: the tendency is kept apart from the stepper.

A tendency is any function ``f(x, t) -> dx/dt`` on arrays of any shape (a state ``(n,)``,
an ensemble ``(N, n)`` or a field ``(nz, nx)``): the stepper never looks inside.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Tendency = Callable[[np.ndarray, float], np.ndarray]


def rk4_step(f: Tendency, x: np.ndarray, t: float, dt: float) -> np.ndarray:
    """One classical Runge–Kutta (RK4) step.

    ``k1 = f(x, t)``, ``k2 = f(x + dt/2 k1, t + dt/2)``, ``k3 = f(x + dt/2 k2, t + dt/2)``,
    ``k4 = f(x + dt k3, t + dt)``, ``x_next = x + dt/6 (k1 + 2 k2 + 2 k3 + k4)``.

    Parameters
    ----------
    f : callable
        Tendency ``f(x, t)``, returning an array of the shape of ``x``.
    x : ndarray
        State at time ``t`` (any shape).
    t, dt : float
        Current time and step.

    Returns
    -------
    ndarray
        State at ``t + dt``; fourth-order accurate (global error ``O(dt⁴)``).
    """
    k1 = f(x, t)
    k2 = f(x + 0.5 * dt * k1, t + 0.5 * dt)
    k3 = f(x + 0.5 * dt * k2, t + 0.5 * dt)
    k4 = f(x + dt * k3, t + dt)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(f: Tendency, x0: np.ndarray, t0: float, dt: float, n_steps: int) -> np.ndarray:
    """Integrate with RK4 and return the whole trajectory.

    Parameters
    ----------
    f : callable
        Tendency ``f(x, t)``.
    x0 : ndarray
        Initial state, any shape ``S``.
    t0, dt : float
        Start time and step.
    n_steps : int
        Number of steps (``>= 0``).

    Returns
    -------
    ndarray, shape ``(n_steps + 1, *S)``
        The states at ``t0, t0 + dt, …, t0 + n_steps dt``.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    x = np.asarray(x0, dtype=float)
    out = np.empty((n_steps + 1, *x.shape))
    out[0] = x
    for k in range(n_steps):
        x = rk4_step(f, x, t0 + k * dt, dt)
        out[k + 1] = x
    return out
