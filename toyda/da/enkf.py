"""Ensemble Kalman filters: the stochastic EnKF with perturbed observations (Evensen 1994; Burgers et
al. 1998) and the ETKF, the deterministic symmetric square-root filter (Bishop et al. 2001; Hunt et
al. 2007; Sakov & Oke 2008). Members are rows of ``E (N, n)``; every member is forecast in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, cycle, first_ensemble, inflate
from toyda.experiment import Experiment, Observations


def _check(n_members: int, inflation: float) -> None:
    check("n_members", n_members, n_members >= 2, "an ensemble needs at least 2 members")
    check("inflation", inflation, inflation >= 1, "must be >= 1 (1 = no inflation)")


def etkf_analysis(E: np.ndarray, y: np.ndarray, observed: np.ndarray, sigma_o: float,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """The ETKF analysis in ensemble space (Hunt et al. 2007, eqs. 20–25), symmetric square root:
    mean-preserving, ``E_a = x̄_a + T A`` with ``T = [(N−1) P̃_a]^{1/2}``. ``weights`` (per observed
    component, in (0, 1]) taper R⁻¹ for localisation."""
    N = E.shape[0]
    xm = E.mean(axis=0)
    A = E - xm
    Y = A[:, observed]                                      # (N, m) observation-space anomalies
    rinv = (weights if weights is not None else 1.0) / sigma_o ** 2
    C = (N - 1) * np.eye(N) + (Y * rinv) @ Y.T
    w, V = np.linalg.eigh(C)
    Pa = (V / w) @ V.T                                      # P̃_a = C⁻¹
    wbar = Pa @ (Y * rinv) @ (y - xm[observed])
    T = (V * np.sqrt((N - 1) / w)) @ V.T
    return xm + (wbar + T) @ A


@dataclass(frozen=True)
class ETKF:
    n_members: int = 10
    inflation: float = 1.0
    name: ClassVar[str] = "etkf"

    def __post_init__(self) -> None:
        _check(self.n_members, self.inflation)

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        E = first_ensemble(exp, obs, self.n_members, rng)
        return cycle(exp, obs, E, lambda E, y, o, s, r: etkf_analysis(inflate(E, self.inflation), y, o, s), rng)


@dataclass(frozen=True)
class EnKF:
    n_members: int = 10
    inflation: float = 1.0
    name: ClassVar[str] = "enkf"

    def __post_init__(self) -> None:
        _check(self.n_members, self.inflation)

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        def analyse(E, y, o, s, r):
            E = inflate(E, self.inflation)
            N = E.shape[0]
            A = E - E.mean(axis=0)
            Y = A[:, o]
            D = s * r.standard_normal((N, y.size))
            D -= D.mean(axis=0)                             # centred perturbations (Burgers et al. 1998)
            S = Y.T @ Y / (N - 1) + s ** 2 * np.eye(y.size)
            innov = y + D - E[:, o]                         # each member sees its own perturbed observations
            return E + np.linalg.solve(S, innov.T).T @ (Y.T @ A / (N - 1))
        return cycle(exp, obs, first_ensemble(exp, obs, self.n_members, rng), analyse, rng)
