"""The bootstrap particle filter (Gordon et al. 1993; van Leeuwen et al. 2019): particles are
forecast with the model, weighted by the observation likelihood, and resampled (systematic
resampling) when the effective sample size falls below a threshold; resampled particles get a
Gaussian regularisation jitter scaled by their covariance (Musso et al. 2001)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, diverged, first_ensemble, spread
from toyda.experiment import Experiment, Observations


def systematic_resample(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of N particles drawn with one uniform offset and N evenly spaced points on the CDF."""
    N = len(w)
    points = (rng.random() + np.arange(N)) / N
    return np.minimum(np.searchsorted(np.cumsum(w), points), N - 1)


@dataclass(frozen=True)
class PF:
    n_members: int = 100
    resample_threshold: float = 0.5
    """resample when ESS / N falls below this"""
    jitter: float = 0.3
    """regularisation: multiple of the optimal Gaussian-kernel bandwidth h = (4/(n+2))^{1/(n+4)} N^{-1/(n+4)}"""
    name: ClassVar[str] = "pf"

    def __post_init__(self) -> None:
        check("n_members", self.n_members, self.n_members >= 2, "a particle filter needs at least 2 particles")
        check("resample_threshold", self.resample_threshold, 0 < self.resample_threshold <= 1, "must be in (0, 1]")
        check("jitter", self.jitter, self.jitter >= 0, "must be >= 0")

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        m, N = exp.model, self.n_members
        E = first_ensemble(exp, obs, N, rng)
        logw = np.full(N, -np.log(N))
        K_, n = obs.y.shape
        x_f, x_a = np.empty((K_, n)), np.empty((K_, n))
        s_f, s_a, ess = np.empty(K_), np.empty(K_), np.empty(K_)
        E_a = np.empty((K_, N, n))
        h = self.jitter * (4 / (n + 2)) ** (1 / (n + 4)) * N ** (-1 / (n + 4))
        stop = None
        for k in range(K_):
            E = m.forecast(E, obs.steps[k])
            w = np.exp(logw - logw.max())
            w /= w.sum()
            x_f[k], s_f[k] = w @ E, spread(E)
            o = np.isfinite(obs.y[k])
            if o.any():
                logw = logw - 0.5 * np.sum((obs.y[k, o] - E[:, o]) ** 2, axis=1) / exp.sigma_o ** 2
                logw -= logw.max()
                w = np.exp(logw)
                w /= w.sum()
                ess[k] = 1 / np.sum(w ** 2)
                if ess[k] < self.resample_threshold * N:
                    C = np.cov(E.T)                           # the forecast particles' spread sets the jitter
                    E = E[systematic_resample(w, rng)]
                    L = np.linalg.cholesky(C + 1e-9 * np.trace(C) / n * np.eye(n))
                    E = E + h * rng.standard_normal((N, n)) @ L.T
                    logw = np.full(N, -np.log(N))
                    w = np.full(N, 1 / N)
            else:
                ess[k] = 1 / np.sum(w ** 2)
            x_a[k] = w @ E
            s_a[k] = float(np.sqrt(np.mean(w @ (E - x_a[k]) ** 2)))
            E_a[k] = E[systematic_resample(w, rng)] if not np.allclose(w, 1 / N) else E
            if diverged(x_a[k], exp):
                stop = k
                break
        cut = slice(None) if stop is None else slice(0, stop)
        return DAResult(x_f[cut], x_a[cut], s_f[cut], s_a[cut], E_a[cut], None, stop, {"ess": ess[cut]})
