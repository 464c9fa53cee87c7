"""The extended Kalman filter (Jazwinski 1970; Kalnay 2003 §5.6): the covariance is propagated with
the tangent-linear of the RK4 steps, ``P_f = α M P_a Mᵀ``, and updated in Joseph form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, diverged, first_ensemble
from toyda.experiment import Experiment, Observations


@dataclass(frozen=True)
class ExtKF:
    inflation: float = 1.0
    """multiplicative inflation α of the forecast covariance, once per analysis"""
    name: ClassVar[str] = "extkf"

    def __post_init__(self) -> None:
        check("inflation", self.inflation, self.inflation >= 1, "must be >= 1")

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        m, so2 = exp.model, exp.sigma_o ** 2
        x = first_ensemble(exp, obs, 1, rng)[0]
        P = m.x0_variance * np.eye(m.n)
        K_, n = obs.y.shape
        x_f, x_a = np.empty((K_, n)), np.empty((K_, n))
        s_f, s_a = np.empty(K_), np.empty(K_)
        stop = None
        for k in range(K_):
            x, M = m.forecast_tl(x, obs.steps[k])
            P = self.inflation * (M @ P @ M.T)
            P = 0.5 * (P + P.T)
            x_f[k], s_f[k] = x, np.sqrt(np.mean(np.diag(P)))
            o = np.isfinite(obs.y[k])
            if o.any():
                H = np.eye(n)[o]
                S = H @ P @ H.T + so2 * np.eye(int(o.sum()))
                G = np.linalg.solve(S, H @ P).T                 # K = P Hᵀ S⁻¹
                x = x + G @ (obs.y[k, o] - x[o])
                IKH = np.eye(n) - G @ H
                P = IKH @ P @ IKH.T + so2 * G @ G.T             # Joseph form: symmetric, positive
                P = 0.5 * (P + P.T)
            x_a[k], s_a[k] = x, np.sqrt(np.mean(np.diag(P)))
            if diverged(x, exp):
                stop = k
                break
        cut = slice(None) if stop is None else slice(0, stop)
        return DAResult(x_f[cut], x_a[cut], s_f[cut], s_a[cut], None, None, stop)
