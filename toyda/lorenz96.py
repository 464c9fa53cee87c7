"""Lorenz-96: ``dx_i/dt = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F`` on a ring of ``n`` variables.

The standard testbed of ensemble DA (Lorenz 1996; Lorenz & Emanuel 1998): with ``n = 40`` and
``F = 8`` it is chaotic, with about 13 positive Lyapunov exponents. Arrays are ``(..., n)``, so an
ensemble ``(N, n)`` is advanced in one call.
"""

from __future__ import annotations

import numpy as np

from toyda.integrate import rk4_step

N_DEFAULT = 40
F_DEFAULT = 8.0


def tendency(x: np.ndarray, F: float = F_DEFAULT) -> np.ndarray:
    """``f_i(x) = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F`` (periodic), shape ``(..., n)``."""
    return (np.roll(x, -1, axis=-1) - np.roll(x, 2, axis=-1)) * np.roll(x, 1, axis=-1) - x + F


def jacobian(x: np.ndarray) -> np.ndarray:
    """``∂f/∂x`` at one state ``x (n,)``: row i has x_{i−1} at i+1, −x_{i−1} at i−2,
    x_{i+1} − x_{i−2} at i−1 and −1 at i. Shape ``(n, n)``."""
    n = x.shape[-1]
    i = np.arange(n)
    J = -np.eye(n)
    J[i, (i + 1) % n] += x[(i - 1) % n]
    J[i, (i - 2) % n] -= x[(i - 1) % n]
    J[i, (i - 1) % n] += x[(i + 1) % n] - x[(i - 2) % n]
    return J


def tendency_torch(x, F: float = F_DEFAULT):
    """The same tendency on a torch tensor ``(..., n)`` (for autograd)."""
    import torch  # noqa: PLC0415

    return (torch.roll(x, -1, dims=-1) - torch.roll(x, 2, dims=-1)) * torch.roll(x, 1, dims=-1) - x + F


def step(x: np.ndarray, dt: float = 0.05, F: float = F_DEFAULT) -> np.ndarray:
    """One RK4 step (:func:`toyda.integrate.rk4_step`) of ``x (..., n)``."""
    return rk4_step(lambda v, t: tendency(v, F), np.asarray(x, dtype=float), 0.0, dt)
