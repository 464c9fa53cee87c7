"""The bootstrap particle filter (sequential importance resampling) with regularisation jitter.

References: Gordon, Salmond & Smith (1993), *IEE Proc. F* 140, 107–113 (the bootstrap filter);
Kitagawa (1996), *J. Comput. Graph. Stat.* 5, 1–25 (systematic resampling); Musso, Oudjane &
Le Gland (2001), in *Sequential Monte Carlo Methods in Practice*, ch. 12 (the regularised PF and
its kernel bandwidth); van Leeuwen (2009), *Mon. Wea. Rev.* 137, 4089–4114; van Leeuwen et al.
(2019), *Q. J. R. Meteorol. Soc.* 145, 2335–2365; DAPPER's ``PartFilt``.

Particles ``E (N, n)`` are forecast by the model (the proposal is the prior). At an observation
time the log-weights gain the log-likelihood ``−½ ‖y − H x_i‖² / σ_o²`` (log-space, shifted by
the maximum, so that no weight underflows to an all-zero vector); the estimate is the weighted
mean. When the effective sample size ``ESS = 1 / Σ w_i²`` falls below ``resample_threshold · N``
the particles are resampled systematically (one uniform offset, N evenly spaced points on the
cumulative weights) and the weights reset to 1/N. The model here is deterministic, so resampled
copies would stay identical forever: each duplicated particle is moved by a Gaussian jitter with
covariance ``(jitter · h)² P_w``, ``P_w`` the weighted covariance of the particles before
resampling and ``h = N^{−1/(n+4)}`` Scott's rule-of-thumb bandwidth (Musso et al. 2001; the same
convention as DAPPER's ``reg``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, diverged, first_ensemble
from toyda.experiment import Experiment, Observations


def systematic_resample(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Systematic resampling (Kitagawa 1996): indices ``(N,)`` (sorted) of the particles to keep.

    Parameters
    ----------
    w : ndarray ``(N,)``
        Normalised weights.
    rng : numpy.random.Generator
        Draws the one uniform offset.
    """
    N = len(w)
    points = (rng.random() + np.arange(N)) / N
    cdf = np.cumsum(w)
    cdf[-1] = 1.0                                             # round-off must not leave points above the CDF
    return np.searchsorted(cdf, points)


def normalise(logw: np.ndarray) -> np.ndarray:
    """Weights ``(N,)`` summing to 1 from log-weights (shifted by their maximum first)."""
    w = np.exp(logw - logw.max())
    return w / w.sum()


def weighted_anomalies(E: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``S (N, n)`` with ``Sᵀ S`` the weighted, unbiased covariance of the particles.

    The weighted covariance ``Σ w_i (x_i − x̄)(x_i − x̄)ᵀ / (1 − Σ w_i²)``; with (nearly) all the
    weight on one particle it is zero, and the unweighted covariance is used instead.
    """
    if 1.0 - np.sum(w ** 2) < 1e-9:
        w = np.full(len(w), 1.0 / len(w))
    A = E - w @ E
    return np.sqrt(w / (1.0 - np.sum(w ** 2)))[:, None] * A


@dataclass(frozen=True)
class PF:
    """Bootstrap particle filter, systematic resampling when ESS/N < ``resample_threshold``, jitter.

    DAPPER's sakov2012 L63 preset is ``PartFilt(N=100, reg=2.4, NER=0.3)`` (rmse_a 0.35–0.38).
    """

    n_members: int = 100
    """number of particles N (>= 2)"""
    resample_threshold: float = 0.3
    """resample when the effective sample size over N falls below this, in (0, 1] (DAPPER's NER)"""
    jitter: float = 2.4
    """regularisation after resampling, in units of h·(weighted particle std), h = N^(−1/(n+4)) (DAPPER's reg); 0 = none"""
    name: ClassVar[str] = "pf"

    def __post_init__(self) -> None:
        check("n_members", self.n_members, int(self.n_members) == self.n_members and self.n_members >= 2,
              "a particle filter needs an integer number of particles >= 2")
        check("resample_threshold", self.resample_threshold, 0 < self.resample_threshold <= 1,
              "the fraction of N below which the effective sample size triggers resampling, in (0, 1]")
        check("jitter", self.jitter, bool(np.isfinite(self.jitter) and self.jitter >= 0), "must be a finite number >= 0")

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        """Run the filter over ``obs``.

        ``E_a`` holds, per time, the particles resampled to equal weights (for CRPS and rank
        histograms; drawn from a generator of their own so they do not change the run);
        ``info["ess"] (K,)`` is the effective sample size after each weight update and
        ``info["resampled"] (K,)`` whether the particles were resampled there.
        """
        m, N = exp.model, int(self.n_members)
        E = first_ensemble(exp, obs, N, rng)
        report_rng = np.random.default_rng(rng.integers(2 ** 63))
        logw = np.zeros(N)
        w = np.full(N, 1.0 / N)
        K, n = obs.y.shape
        x_f, x_a = np.empty((K, n)), np.empty((K, n))
        s_f, s_a, ess = np.empty(K), np.empty(K), np.empty(K)
        resampled = np.zeros(K, bool)
        E_a = np.empty((K, N, n))
        h = self.jitter * N ** (-1.0 / (n + 4))
        stop = None
        for k in range(K):
            E = m.forecast(E, obs.steps[k])
            x_f[k] = w @ E
            s_f[k] = np.sqrt(np.mean(w @ (E - x_f[k]) ** 2))
            o = np.isfinite(obs.y[k])
            if o.any():
                logw = logw - 0.5 * np.sum((obs.y[k, o] - E[:, o]) ** 2, axis=1) / exp.sigma_o ** 2
                logw -= logw.max()
                w = normalise(logw)
            ess[k] = 1.0 / np.sum(w ** 2)
            x_a[k] = w @ E
            s_a[k] = np.sqrt(np.mean(w @ (E - x_a[k]) ** 2))
            E_a[k] = E if np.all(w == w[0]) else E[systematic_resample(w, report_rng)]
            if o.any() and ess[k] < self.resample_threshold * N:
                S = weighted_anomalies(E, w)                       # jitter scale from the weighted particles
                idx = systematic_resample(w, rng)
                E = E[idx]
                dup = np.zeros(N, bool)                            # every copy of a particle drawn twice or more
                dup[1:] |= idx[1:] == idx[:-1]
                dup[:-1] |= idx[:-1] == idx[1:]
                if h > 0 and dup.any():
                    E[dup] += h * rng.standard_normal((int(dup.sum()), N)) @ S
                logw = np.zeros(N)
                w = np.full(N, 1.0 / N)
                resampled[k] = True
            if diverged(x_a[k], exp):
                stop = k
                break
        cut = slice(None) if stop is None else slice(0, stop)
        return DAResult(x_f[cut], x_a[cut], s_f[cut], s_a[cut], E_a[cut], None, stop,
                        {"ess": ess[cut], "resampled": resampled[cut]})
