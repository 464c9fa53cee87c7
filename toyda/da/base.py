"""What every DA method shares: the result, the sequential cycle, the first background and inflation.

The cycle is the one of every sequential method (Kalnay 2003 §5; Evensen 2009 ch. 3; DAPPER's
``da_method`` loop): forecast from the previous analysis through the model steps to the next
observation time, analyse with the components observed there (NaN = not observed), repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from toyda.experiment import Experiment, Observations
from toyda.metrics import spread  # RMS ensemble spread, DAPPER's rmv

Analysis = Callable[[np.ndarray, np.ndarray, np.ndarray, float, np.random.Generator], np.ndarray]
"""``analyse(E_f (N, n), y (m,), observed (n,) bool, sigma_o, rng) -> E_a (N, n)``"""


@dataclass
class DAResult:
    """Means, spreads and ensembles of one run at the observation times (cut at a divergence)."""

    x_f: np.ndarray
    x_a: np.ndarray
    spread_f: np.ndarray | None = None
    spread_a: np.ndarray | None = None
    E_a: np.ndarray | None = None
    E_f: np.ndarray | None = None
    diverged_at: int | None = None
    info: dict = field(default_factory=dict)


def first_ensemble(exp: Experiment, obs: Observations, N: int, rng: np.random.Generator) -> np.ndarray:
    """``N`` initial states: the true x0 plus N(0, model.x0_variance) when it is known (DAPPER's X0),
    else draws from the climatology."""
    m = exp.model
    if obs.x0_true is not None:
        return obs.x0_true + np.sqrt(m.x0_variance) * rng.standard_normal((N, m.n))
    mu, C = m.climatology()
    return rng.multivariate_normal(mu, C, size=N)


def first_background(exp: Experiment, obs: Observations, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The first background ``x_b (n,)`` and its error covariance ``P_0 (n, n)`` for the methods
    without an ensemble: one draw of :func:`first_ensemble` with ``P_0 = model.x0_variance · I``
    when the true x0 is known (DAPPER's X0), else the climatological mean and covariance."""
    m = exp.model
    if obs.x0_true is not None:
        return first_ensemble(exp, obs, 1, rng)[0], m.x0_variance * np.eye(m.n)
    mu, C = m.climatology()
    return mu.copy(), C.copy()


def inflate(E: np.ndarray, factor: float) -> np.ndarray:
    """Multiplicative inflation of the anomalies about the ensemble mean."""
    if factor == 1.0:
        return E
    mean = E.mean(axis=0)
    return mean + factor * (E - mean)


def diverged(x: np.ndarray, exp: Experiment) -> bool:
    """Non-finite, or a thousand climatological standard deviations away."""
    if not np.all(np.isfinite(x)):
        return True
    mu, C = exp.model.climatology()
    return bool(np.max(np.abs(x - mu)) > 1e3 * np.sqrt(np.max(np.diag(C))))


def cycle(exp: Experiment, obs: Observations, E: np.ndarray, analyse: Analysis, rng: np.random.Generator,
          keep_ensembles: bool = True) -> DAResult:
    """The sequential cycle: forecast the ensemble ``E (N, n)`` through ``obs.steps[k]`` model steps,
    analyse with the components observed at time k (NaN = not observed), check divergence."""
    K, n, N = len(obs.t), exp.model.n, E.shape[0]
    x_f, x_a = np.empty((K, n)), np.empty((K, n))
    s_f, s_a = np.empty(K), np.empty(K)
    E_f = np.empty((K, N, n)) if keep_ensembles and N > 1 else None
    E_a = np.empty((K, N, n)) if keep_ensembles and N > 1 else None
    stop = None
    for k in range(K):
        E = exp.model.forecast(E, obs.steps[k])
        y = obs.y[k]
        observed = np.isfinite(y)
        x_f[k] = E.mean(axis=0)
        if N > 1:
            s_f[k] = spread(E)
            if E_f is not None:
                E_f[k] = E
        if observed.any():
            E = analyse(E, y[observed], observed, exp.sigma_o, rng)
        x_a[k] = E.mean(axis=0)
        if diverged(x_a[k], exp):
            stop = k
            break
        if N > 1:
            s_a[k] = spread(E)
            if E_a is not None:
                E_a[k] = E
    cut = slice(None) if stop is None else slice(0, stop)
    ens = N > 1
    return DAResult(x_f[cut], x_a[cut], s_f[cut] if ens else None, s_a[cut] if ens else None,
                    E_a[cut] if E_a is not None else None, E_f[cut] if E_f is not None else None, stop)


def check(name: str, value: float, ok: bool, allowed: str) -> None:
    """A ValueError ``"<name> = <value> is not allowed: <allowed>"`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")
