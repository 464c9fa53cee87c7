"""Cycled 3D-Var with a static background-error covariance (Lorenc 1986; Kalnay 2003 §5.5;
Bocquet 2014, lecture notes ch. 2; DAPPER's Var3D).

At each observation time the background ``x_b`` is the model forecast of the previous analysis and
the analysis minimises

    J(x) = ½ (x − x_b)ᵀ B⁻¹ (x − x_b) + ½ ‖y − H x‖² / σ_o²,

whose minimiser for a linear ``H`` (a selection of components here) is the BLUE
``x_a = x_b + B Hᵀ (H B Hᵀ + R)⁻¹ (y − H x_b)``. ``B`` does not evolve: ``b_scale · C_clim``
(``background="climatology"``, DAPPER's ``B="clim"`` with ``xB``) or ``b_scale · I`` ("identity").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, cycle, first_background
from toyda.experiment import Experiment, Observations

BACKGROUNDS = ("climatology", "identity")


def check_background(background: str, b_scale: float) -> None:
    """ValueErrors naming ``background`` / ``b_scale`` when they are not allowed."""
    check("background", background, background in BACKGROUNDS, "'climatology' or 'identity'")
    check("b_scale", b_scale, bool(np.isfinite(b_scale) and b_scale > 0), "must be a finite number > 0")


def static_b(exp: Experiment, background: str, b_scale: float) -> np.ndarray:
    """``B (n, n)``: ``b_scale · C_clim`` ('climatology') or ``b_scale · I`` ('identity') (DAPPER's xB)."""
    if background == "climatology":
        return b_scale * exp.model.climatology()[1]
    return b_scale * np.eye(exp.model.n)


def blue(xb: np.ndarray, y: np.ndarray, observed: np.ndarray, B: np.ndarray, sigma_o: float) -> np.ndarray:
    """The BLUE / 3D-Var minimiser ``x_a = x_b + B Hᵀ (H B Hᵀ + R)⁻¹ (y − H x_b)`` for a selection H.

    Parameters
    ----------
    xb : ndarray ``(..., n)``
        Backgrounds (rows share the gain).
    y : ndarray ``(..., m)``
        The observed values, ``m = observed.sum()``.
    observed : ndarray ``(n,)`` of bool
        The observed components (H selects them).
    B : ndarray ``(n, n)``
    sigma_o : float
        ``R = σ_o² I``.
    """
    BHt = B[:, observed]
    S = BHt[observed] + sigma_o ** 2 * np.eye(int(observed.sum()))
    return xb + np.linalg.solve(S, (y - xb[..., observed]).T).T @ BHt.T


@dataclass(frozen=True)
class Var3D:
    """Cycled 3D-Var: the model forecast is the background, ``B`` is static."""

    background: str = "climatology"
    """'climatology' (B = b_scale · C_clim) or 'identity' (B = b_scale · I)"""
    b_scale: float = 0.1
    """the scale of B; DAPPER's xB: 0.1 on sakov2012 L63, 0.02 on sakov2008 L96"""
    name: ClassVar[str] = "3dvar"

    def __post_init__(self) -> None:
        check_background(self.background, self.b_scale)

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        """Forecast, then the BLUE with the components observed at each time (NaN = not observed)."""
        B = static_b(exp, self.background, self.b_scale)
        x0 = first_background(exp, obs, rng)[0]
        return cycle(exp, obs, x0[None], lambda E, y, o, s, r: blue(E, y, o, B, s), rng)
