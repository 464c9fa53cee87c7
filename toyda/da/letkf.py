"""The local ETKF (Hunt et al. 2007): one ETKF analysis per grid point, with the observations'
inverse error variance tapered by the Gaspari–Cohn function of their distance on the ring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toyda.da.base import DAResult, check, cycle, first_ensemble, inflate
from toyda.da.enkf import _check
from toyda.experiment import Experiment, Observations


def gaspari_cohn(r: np.ndarray) -> np.ndarray:
    """The Gaspari & Cohn (1999, eq. 4.10) fifth-order taper of ``r = distance / c``: 1 at 0, 0 from 2 on."""
    r = np.abs(np.asarray(r, dtype=float))
    out = np.zeros_like(r)
    a = r <= 1
    b = (r > 1) & (r < 2)
    ra, rb = r[a], r[b]
    out[a] = -0.25 * ra ** 5 + 0.5 * ra ** 4 + 0.625 * ra ** 3 - 5 / 3 * ra ** 2 + 1
    out[b] = (rb ** 5 / 12 - 0.5 * rb ** 4 + 0.625 * rb ** 3 + 5 / 3 * rb ** 2 - 5 * rb + 4 - 2 / 3 / rb)
    return out


def ring_distance(n: int) -> np.ndarray:
    i = np.arange(n)
    d = np.abs(i[:, None] - i[None, :])
    return np.minimum(d, n - d)


@dataclass(frozen=True)
class LETKF:
    n_members: int = 7
    inflation: float = 1.0
    localisation_radius: float = 4.0
    """half-width c of the Gaspari–Cohn taper, in grid points (it reaches zero at 2c)"""
    name: ClassVar[str] = "letkf"

    def __post_init__(self) -> None:
        _check(self.n_members, self.inflation)
        check("localisation_radius", self.localisation_radius, self.localisation_radius > 0, "must be > 0")

    def assimilate(self, exp: Experiment, obs: Observations, rng: np.random.Generator) -> DAResult:
        if not exp.model.has_distance:
            raise ValueError(f"localisation_radius: {exp.model.name} has no distance between its variables; "
                             "the LETKF needs a spatial model (lorenz96); use etkf on lorenz63")
        rho = gaspari_cohn(ring_distance(exp.model.n) / self.localisation_radius)     # (grid point, variable)

        def analyse(E, y, o, s, r):
            E = inflate(E, self.inflation)
            N = E.shape[0]
            xm = E.mean(axis=0)
            A = E - xm
            Y = A[:, o]                                       # (N, m)
            w = rho[:, o] / s ** 2                            # (n, m): tapered R⁻¹ for each grid point
            C = (N - 1) * np.eye(N) + np.einsum("im,am,bm->iab", w, Y, Y)
            lam, V = np.linalg.eigh(C)                        # batched over the n grid points
            d = y - xm[o]
            u = np.einsum("im,bm,m->ib", w, Y, d)             # Y R⁻¹ d per grid point
            wbar = np.einsum("iab,ib->ia", V / lam[:, None, :], np.einsum("icb,ic->ib", V, u))   # C⁻¹ u
            T = np.einsum("iab,ib,icb->iac", V, np.sqrt((N - 1) / lam), V)
            W = wbar[:, None, :] + T                          # (n, N, N): weights per grid point
            return xm + np.einsum("iab,bi->ai", W, A)
        return cycle(exp, obs, first_ensemble(exp, obs, self.n_members, rng), analyse, rng)
