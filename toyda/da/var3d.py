"""Cycled 3D-Var with a static B (Lorenc 1986; Kalnay 2003 §5.5), and optimal interpolation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, cycle, first_ensemble
from toyda.experiment import Experiment, Observations


def static_b(exp: Experiment, background: str, b_scale: float) -> np.ndarray:
    """``B = b_scale · C_clim`` ('climatology') or ``b_scale · I`` ('identity') (DAPPER's xB)."""
    if background == "climatology":
        return b_scale * exp.model.climatology()[1]
    return b_scale * np.eye(exp.model.n)


def blue(xb: np.ndarray, y: np.ndarray, observed: np.ndarray, B: np.ndarray, sigma_o: float) -> np.ndarray:
    """The BLUE / 3D-Var minimiser ``x_a = x_b + B Hᵀ (H B Hᵀ + R)⁻¹ (y − H x_b)`` for a selection H
    (rows of ``xb`` are states; the gain is the same for all of them)."""
    BHt = B[:, observed]
    S = BHt[observed] + sigma_o ** 2 * np.eye(int(observed.sum()))
    return xb + np.linalg.solve(S, (y - xb[..., observed]).T).T @ BHt.T


@dataclass(frozen=True)
class Var3D:
    """Cycled 3D-Var: the model forecast is the background, B is static."""

    background: str = "climatology"
    b_scale: float = 0.1
    name: ClassVar[str] = "3dvar"

    def __post_init__(self) -> None:
        check("background", self.background, self.background in ("climatology", "identity"),
              "'climatology' or 'identity'")
        check("b_scale", self.b_scale, self.b_scale > 0, "must be > 0")

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        B = static_b(exp, self.background, self.b_scale)
        x0 = first_ensemble(exp, obs, 1, rng)
        return cycle(exp, obs, x0, lambda E, y, o, s, r: blue(E, y, o, B, s), rng)


@dataclass(frozen=True)
class OI:
    """Optimal interpolation: the climatological mean is the background at every time, B the
    climatological covariance, no model (DAPPER's OptInterp)."""

    name: ClassVar[str] = "oi"

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        mu, C = exp.model.climatology()
        K, n = obs.y.shape
        x_a = np.empty((K, n))
        for k in range(K):
            o = np.isfinite(obs.y[k])
            x_a[k] = blue(mu[None], obs.y[k, o], o, C, exp.sigma_o)[0] if o.any() else mu
        return DAResult(np.tile(mu, (K, 1)), x_a)
