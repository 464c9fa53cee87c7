"""Strong-constraint 4D-Var (Le Dimet & Talagrand 1986; Courtier et al. 1994; Bocquet & Sakov 2014)
over windows of ``window`` observation intervals:

    J(x0) = ½ (x0 − x_b)ᵀ B⁻¹ (x0 − x_b) + ½ Σ_k ‖y_k − H M_{0→k}(x0)‖² / σ_o²,

minimised by Gauss–Newton (incremental 4D-Var): each outer loop linearises the model with the
tangent-linear of the RK4 steps and solves the quadratic inner problem exactly (the state is
small). ``cost_and_gradient`` gives J and its gradient by the adjoint (the transposed TLM) for tests
and for anyone who prefers a quasi-Newton minimiser. The background of the next window is the
forecast of this window's analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, diverged, first_ensemble
from toyda.da.var3d import static_b
from toyda.experiment import Experiment, Observations


def window_trajectory(model, x0: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """States at the window's observation times and the TLMs ``M_{0→k}``."""
    xs, Ms, M, x = [], [], np.eye(model.n), x0
    for s in steps:
        x, Mk = model.forecast_tl(x, s)
        M = Mk @ M
        xs.append(x)
        Ms.append(M)
    return np.array(xs), Ms


def cost_and_gradient(model, x0, xb, Binv, y, steps, sigma_o):
    """``J(x0)`` and ``∇J = B⁻¹(x0 − x_b) − Σ_k M_{0→k}ᵀ Hᵀ (y_k − H x_k) / σ_o²`` (y: NaN = not observed)."""
    xs, Ms = window_trajectory(model, x0, steps)
    d = x0 - xb
    J, g = 0.5 * d @ Binv @ d, Binv @ d
    for x, M, yk in zip(xs, Ms, y):
        o = np.isfinite(yk)
        r = np.where(o, np.nan_to_num(yk) - x, 0.0) / sigma_o ** 2
        J += 0.5 * sigma_o ** 2 * r @ r
        g -= M.T @ r
    return J, g


@dataclass(frozen=True)
class Var4D:
    window: int = 1
    """observation intervals per assimilation window"""
    background: str = "climatology"
    b_scale: float = 0.1
    outer_loops: int = 4
    name: ClassVar[str] = "4dvar"

    def __post_init__(self) -> None:
        check("window", self.window, self.window >= 1, "must be >= 1")
        check("background", self.background, self.background in ("climatology", "identity"),
              "'climatology' or 'identity'")
        check("b_scale", self.b_scale, self.b_scale > 0, "must be > 0")

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        m = exp.model
        Binv = np.linalg.inv(static_b(exp, self.background, self.b_scale))
        xb = first_ensemble(exp, obs, 1, rng)[0]            # background at the window start (t = 0)
        K_, n = obs.y.shape
        x_f, x_a = np.empty((K_, n)), np.empty((K_, n))
        costs, stop = [], None
        for start in range(0, K_, self.window):
            idx = np.arange(start, min(start + self.window, K_))
            steps, y = obs.steps[idx], obs.y[idx]
            x_f[idx] = window_trajectory(m, xb, steps)[0]
            x0 = xb.copy()
            for _ in range(self.outer_loops):              # Gauss–Newton: exact inner solves
                xs, Ms = window_trajectory(m, x0, steps)
                A, b = Binv.copy(), Binv @ (xb - x0)
                for x, M, yk in zip(xs, Ms, y):
                    o = np.isfinite(yk)
                    HM = M[o]
                    A += HM.T @ HM / exp.sigma_o ** 2
                    b += HM.T @ (yk[o] - x[o]) / exp.sigma_o ** 2
                x0 = x0 + np.linalg.solve(A, b)
            xs, _ = window_trajectory(m, x0, steps)
            costs.append(cost_and_gradient(m, x0, xb, Binv, y, steps, exp.sigma_o)[0])
            x_a[idx] = xs
            if diverged(xs[-1], exp):
                stop = idx[0]
                break
            xb = xs[-1]                                    # the next window's background: this forecast
        cut = slice(None) if stop is None else slice(0, stop)
        return DAResult(x_f[cut], x_a[cut], diverged_at=stop, info={"cost": np.array(costs)})
