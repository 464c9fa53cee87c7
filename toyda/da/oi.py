"""Optimal interpolation (Gandin 1963; Kalnay 2003 §5.4; DAPPER's OptInterp).

No model and no cycling: at every observation time the background is the climatological mean
``μ`` and ``B`` the climatological covariance ``C`` of a long free run, and the analysis is the BLUE
``x_a = μ + C Hᵀ (H C Hᵀ + R)⁻¹ (y − H μ)`` with ``H`` the selection of the observed components.
It is the floor every cycled method must beat: it uses the statistics of the attractor but not
the flow of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult
from toyda.da.var3d import blue
from toyda.experiment import Experiment, Observations


@dataclass(frozen=True)
class OI:
    """Optimal interpolation: climatological mean as background, ``B = C_clim``, no model."""

    name: ClassVar[str] = "oi"

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        """Analyses ``(K, n)`` at the observation times; ``x_f`` is the climatological mean.

        Times sharing one pattern of observed components share one gain, so the loop runs over
        the distinct patterns (one for complete data), not over the times.
        """
        mu, C = exp.model.climatology()
        K = obs.y.shape[0]
        x_a = np.tile(mu, (K, 1))
        observed = np.isfinite(obs.y)
        patterns, which = np.unique(observed, axis=0, return_inverse=True)
        for p, o in enumerate(patterns):
            rows = np.flatnonzero(which.ravel() == p)
            if o.any():
                x_a[rows] = blue(np.broadcast_to(mu, (len(rows), mu.size)), obs.y[rows][:, o], o, C, exp.sigma_o)
        return DAResult(np.tile(mu, (K, 1)), x_a)
