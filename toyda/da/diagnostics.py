"""DAPPER's scores (rmse.a, rmse.f, rmv.a) plus the ensemble CRPS and the rank histogram."""

from __future__ import annotations

import numpy as np

from toyda.da.base import DAResult
from toyda.experiment import Observations, scored


def _rmse_t(x: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((x - truth) ** 2, axis=-1))


def crps_ensemble(E: np.ndarray, x: np.ndarray) -> float:
    """Mean CRPS of ensembles ``E (..., N, n)`` against ``x (..., n)``: E|X − x| − ½ E|X − X'|."""
    a = np.mean(np.abs(E - x[..., None, :]), axis=-2)
    b = np.mean(np.abs(E[..., :, None, :] - E[..., None, :, :]), axis=(-3, -2))
    return float(np.mean(a - 0.5 * b))


def rank_histogram(E: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Counts ``(N+1,)`` of the truth's rank among the members, over times and components."""
    ranks = np.sum(E < x[..., None, :], axis=-2)
    return np.bincount(ranks.ravel(), minlength=E.shape[-2] + 1)


def score(result: DAResult, obs: Observations, burn_in: float) -> dict[str, float]:
    """Time means over the scored analyses (t > burn_in, before any divergence): rmse_a, rmse_f,
    spread_a (DAPPER's rmv.a) and crps_a for ensembles. Needs the truth."""
    if obs.x_true is None:
        raise ValueError("scores need the truth; without it use the innovation statistics")
    K = len(result.x_a)
    keep = scored(obs, burn_in)[:K]
    if not keep.any():
        return {}
    truth = obs.x_true[:K][keep]
    out = {"rmse_a": float(np.mean(_rmse_t(result.x_a[keep], truth))),
           "rmse_f": float(np.mean(_rmse_t(result.x_f[keep], truth)))}
    if result.spread_a is not None:
        out["spread_a"] = float(np.mean(result.spread_a[keep]))
    if result.E_a is not None:
        out["crps_a"] = crps_ensemble(result.E_a[keep], truth)
    return out
