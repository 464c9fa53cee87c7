"""Classical data assimilation on the 2D toy atmosphere, with the dataset's own RS and SAT
operators: cycled 3D-Var (true-model or persistence background) and a stochastic EnKF.

State: the field ``φ (nz, nx)``, flattened row-major to ``n = nz·nx``. Observations at one
time: ``y = [yrs (n_rs·n_vert), ysat (n_sat·nx)]`` with ``H = [H_rs; H_sat]`` and a diagonal
``R`` (the noise levels the dataset was generated with).

Background covariance (separable, never formed as an ``n × n`` matrix)::

    B = (D C_z D) ⊗ C_x,      C_x(i, i') = Σ_k exp(-(d_x(i, i') + k L)² / 2 L_x²)  (wrapped, periodic)
                               C_z(j, j') = exp(-(z_j − z_j')² / 2 L_z²)

with ``D = diag(σ(z))`` from the climatology of the radiosonde observations. ``B`` acts on a
field as ``F ↦ D C_z D F C_x`` (two small matrix products). The analysis is solved in
observation space: ``x_a = x_b + B Hᵀ (H B Hᵀ + R)⁻¹ (y − H x_b)``; ``B Hᵀ`` is built once by
applying ``B`` to the ``m`` columns of ``Hᵀ`` (``m`` = a few hundred), and ``H B Hᵀ + R`` is
Cholesky-factorised once per run.

The EnKF (perturbed observations) localises ``P Hᵀ`` and ``H P Hᵀ`` by Gaussian tapers of the
grid distance between state points and observation locations (a SAT observation is located
at its column and its channel's weighted-mean height). Members start from climatology plus ``B``-
distributed perturbations and carry their own source strength, redrawn each cycle with the
spread of the truth's pulse jitter. The forecast model is :func:`toyda.atmosphere.forecast`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from toyda.atmosphere import AtmosphereConfig, forecast
from toyda.observations import (ObsDataset, radiosonde_adjoint, radiosonde_operator,
                                satellite_adjoint, satellite_operator)

METHODS = ("3dvar", "enkf", "3dvar_no_model")


@dataclass(frozen=True)
class AtmosDAConfig:
    """Settings of the 2D assimilation (lengths in domain units)."""

    length_scale_x: float = 1.0
    """B correlation length in x (periodic)"""
    length_scale_z: float = 0.5
    """B correlation length in z"""
    rs_noise: float = 0.02
    """radiosonde observation error std (as generated)"""
    sat_noise: float = 0.01
    """satellite observation error std (as generated)"""
    n_members: int = 20
    """EnKF ensemble size"""
    loc_x: float = 1.5
    """EnKF localisation length in x"""
    loc_z: float = 0.8
    """EnKF localisation length in z"""
    inflation: float = 1.05
    """EnKF multiplicative inflation of the forecast anomalies"""
    spinup: int = 8
    """cycles assimilated before the first evaluated time of each trajectory"""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("length_scale_x", "length_scale_z", "rs_noise", "sat_noise", "loc_x", "loc_z"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not isinstance(self.n_members, (int, np.integer)) or self.n_members < 2:
            raise ValueError(f"n_members must be an integer >= 2, got {self.n_members!r}")
        if not self.inflation >= 1.0:
            raise ValueError(f"inflation must be >= 1, got {self.inflation!r}")
        if not isinstance(self.spinup, (int, np.integer)) or self.spinup < 0:
            raise ValueError(f"spinup must be an integer >= 0, got {self.spinup!r}")


def model_config(ds: ObsDataset, base: AtmosphereConfig = AtmosphereConfig()) -> AtmosphereConfig:
    """The toy-atmosphere settings on the dataset's grid (physics as in ``base``)."""
    from dataclasses import replace
    x, z = np.asarray(ds.x, float), np.asarray(ds.z, float)
    return replace(base, nx=x.size, nz=z.size, lx=float(x[0] + x[-1]), lz=float(z[0] + z[-1]))


def _gauss(d: np.ndarray, length: float) -> np.ndarray:
    return np.exp(-0.5 * (d / length) ** 2)


def periodic_gauss(d: np.ndarray, length: float, period: float, n_images: int = 4) -> np.ndarray:
    """Wrapped Gaussian correlation at periodic distance ``d``: ``Σ_k g(d + k·period)``
    normalised to 1 at ``d = 0``. Unlike ``g(min distance)`` it is positive definite on any
    circle, so B and the localisation tapers stay valid covariances."""
    k = np.arange(-n_images, n_images + 1) * period
    c = _gauss(np.asarray(d, float)[..., None] + k, length).sum(axis=-1)
    return c / _gauss(k, length).sum()


def periodic_distance(a: np.ndarray, b: np.ndarray, period: float) -> np.ndarray:
    """``|a_i − b_j|`` on a circle of length ``period``, shape ``(len(a), len(b))``."""
    d = np.abs(np.asarray(a, float)[:, None] - np.asarray(b, float)[None, :]) % period
    return np.minimum(d, period - d)


@dataclass(frozen=True)
class SeparableB:
    """``B = (D C_z D) ⊗ C_x`` acting on fields ``(..., nz, nx)``."""

    cz: np.ndarray
    """``D C_z D``, ``(nz, nz)``"""
    cx: np.ndarray
    """``C_x``, ``(nx, nx)``, symmetric circulant"""

    @classmethod
    def gaussian(cls, x: np.ndarray, z: np.ndarray, sigma_z: np.ndarray, length_x: float,
                 length_z: float) -> "SeparableB":
        x, z = np.asarray(x, float), np.asarray(z, float)
        period = float(x[0] + x[-1])
        cx = periodic_gauss(periodic_distance(x, x, period), length_x, period)
        cz = _gauss(np.abs(z[:, None] - z[None, :]), length_z)
        s = np.broadcast_to(np.asarray(sigma_z, float), z.shape)
        return cls(cz=s[:, None] * cz * s[None, :], cx=cx)

    def apply(self, f: np.ndarray) -> np.ndarray:
        """``B f`` for fields ``(..., nz, nx)``."""
        return self.cz @ f @ self.cx

    def sqrt_apply(self, xi: np.ndarray) -> np.ndarray:
        """``B^{1/2} ξ`` (symmetric square roots of both factors): samples with covariance B."""
        def root(c):
            w, v = np.linalg.eigh(c)
            return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        return root(self.cz) @ xi @ root(self.cx)


@dataclass(frozen=True)
class ObsOperator:
    """The dataset's ``H = [H_rs; H_sat]`` on flattened observation vectors of length ``m``."""

    rs_ix: np.ndarray
    rs_iz: np.ndarray
    sat_w: np.ndarray
    dz: float
    nz: int
    nx: int

    @classmethod
    def from_dataset(cls, ds: ObsDataset) -> "ObsOperator":
        return cls(np.asarray(ds.rs_ix), np.asarray(ds.rs_iz), np.asarray(ds.sat_w, float), ds.dz,
                   len(ds.z), len(ds.x))

    @property
    def n_rs(self) -> int:
        return self.rs_ix.size * self.rs_iz.size

    @property
    def m(self) -> int:
        return self.n_rs + self.sat_w.shape[0] * self.nx

    def apply(self, f: np.ndarray) -> np.ndarray:
        """``H f``: fields ``(..., nz, nx)`` → ``(..., m)``."""
        lead = f.shape[:-2]
        rs = radiosonde_operator(f, self.rs_ix, self.rs_iz).reshape(*lead, -1)
        sat = satellite_operator(f, self.sat_w, self.dz).reshape(*lead, -1)
        return np.concatenate([rs, sat], axis=-1)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``Hᵀ y``: ``(..., m)`` → ``(..., nz, nx)``."""
        lead = y.shape[:-1]
        rs = y[..., :self.n_rs].reshape(*lead, self.rs_ix.size, self.rs_iz.size)
        sat = y[..., self.n_rs:].reshape(*lead, self.sat_w.shape[0], self.nx)
        return (radiosonde_adjoint(rs, self.rs_ix, self.rs_iz, self.nz, self.nx)
                + satellite_adjoint(sat, self.sat_w, self.dz))

    def observe(self, ds: ObsDataset, t: int) -> np.ndarray:
        """The stored observations at snapshot ``t`` as one vector ``(m,)``."""
        return np.concatenate([np.ravel(ds.yrs[t]), np.ravel(ds.ysat[t])]).astype(float)

    def error_std(self, rs_noise: float, sat_noise: float) -> np.ndarray:
        """Diagonal of ``R^{1/2}``, ``(m,)``."""
        return np.concatenate([np.full(self.n_rs, rs_noise), np.full(self.m - self.n_rs, sat_noise)])

    def locations(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x_obs, z_obs)`` per observation; a SAT observation sits at its column and at the
        weighted-mean height of its channel (so the Gaussian tapers stay positive definite)."""
        x, z = np.asarray(x, float), np.asarray(z, float)
        n_st, n_lev, n_sat = self.rs_ix.size, self.rs_iz.size, self.sat_w.shape[0]
        xo = np.concatenate([np.repeat(x[self.rs_ix], n_lev), np.tile(x, n_sat)])
        z_sat = (self.sat_w @ z) / self.sat_w.sum(axis=1)
        zo = np.concatenate([np.tile(z[self.rs_iz], n_st), np.repeat(z_sat, self.nx)])
        return xo, zo


def climatological_sigma(ds: ObsDataset, times: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Background std per level ``σ(z)``, ``(nz,)``: the temporal-and-station std of the
    radiosonde observations at each observed level, interpolated to all levels."""
    y = np.asarray(ds.yrs, float)[np.asarray(times)]          # (T, n_rs, n_vert)
    s = y.reshape(-1, y.shape[-1]).std(axis=0)
    zr = np.asarray(ds.z, float)[np.asarray(ds.rs_iz)]
    order = np.argsort(zr)
    return np.maximum(np.interp(np.asarray(ds.z, float), zr[order], s[order]), floor)


class Var3D:
    """Observation-space 3D-Var with a fixed ``B``, ``H`` and diagonal ``R`` (factorised once)."""

    def __init__(self, B: SeparableB, H: ObsOperator, r_std: np.ndarray) -> None:
        self.H = H
        eye = np.eye(H.m)
        self.bht = B.apply(H.adjoint(eye))                     # (m, nz, nx): rows of B Hᵀ
        hbht = H.apply(self.bht)                               # (m, m)
        self.hbht = 0.5 * (hbht + hbht.T)
        self.chol = sla.cho_factor(self.hbht + np.diag(np.asarray(r_std, float) ** 2))

    def analysis(self, xb: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``x_a = x_b + B Hᵀ (H B Hᵀ + R)⁻¹ (y − H x_b)`` for ``xb (nz, nx)``, ``y (m,)``."""
        w = sla.cho_solve(self.chol, y - self.H.apply(xb))
        return xb + np.tensordot(w, self.bht, axes=1)


def enkf_analysis(xf: np.ndarray, y: np.ndarray, H: ObsOperator, r_std: np.ndarray,
                  rho_xo: np.ndarray, rho_oo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stochastic EnKF with perturbed observations and localised gain.

    Parameters
    ----------
    xf : (N, nz, nx) forecast members (already inflated)
    y : (m,) observations; r_std : (m,) observation error std
    rho_xo : (nz·nx, m) taper between state points and observations
    rho_oo : (m, m) taper between observations

    Returns
    -------
    (N, nz, nx) analysis members
    """
    N = xf.shape[0]
    X = xf.reshape(N, -1)
    A = X - X.mean(axis=0)
    HX = H.apply(xf)
    HA = HX - HX.mean(axis=0)
    pht = rho_xo * (A.T @ HA) / (N - 1)                        # (n, m)
    hpht = rho_oo * (HA.T @ HA) / (N - 1)                      # (m, m)
    chol = sla.cho_factor(hpht + np.diag(r_std**2))
    eps = rng.standard_normal((N, y.size)) * r_std
    innov = y[None, :] + eps - HX                              # (N, m)
    innov -= eps.mean(axis=0)                                  # keep the mean update unbiased
    return (X + sla.cho_solve(chol, innov.T).T @ pht.T).reshape(xf.shape)


def localisation(ds: ObsDataset, H: ObsOperator, loc_x: float, loc_z: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian tapers ``ρ(state, obs)`` ``(n, m)`` and ``ρ(obs, obs)`` ``(m, m)``."""
    x, z = np.asarray(ds.x, float), np.asarray(ds.z, float)
    period = float(x[0] + x[-1])
    xo, zo = H.locations(x, z)
    rx = periodic_gauss(periodic_distance(x, xo, period), loc_x, period)      # (nx, m)
    rz = _gauss(np.abs(z[:, None] - zo[None, :]), loc_z)                     # (nz, m)
    rho_xo = (rz[:, None, :] * rx[None, :, :]).reshape(-1, xo.size)          # (nz·nx, m)
    rho_oo = (periodic_gauss(periodic_distance(xo, xo, period), loc_x, period)
              * _gauss(np.abs(zo[:, None] - zo[None, :]), loc_z))
    return rho_xo, rho_oo


@dataclass(frozen=True)
class CycleResult:
    """Analyses of each method at the evaluated times."""

    times: np.ndarray
    """evaluated snapshot indices (targets ``t + 1`` of the held-out transitions), ``(K,)``"""
    analyses: dict[str, np.ndarray]
    """method → ``(K, nz, nx)``"""
    backgrounds: dict[str, np.ndarray]
    """method → ``(K, nz, nx)``: the forecast/background before assimilating ``y(t)``"""
    spread: np.ndarray
    """EnKF analysis spread (RMS std over the grid) at the evaluated times, ``(K,)``"""


def _windows(ds: ObsDataset, times: np.ndarray, spinup: int) -> list[np.ndarray]:
    """Per trajectory: consecutive snapshot indices from ``spinup`` before its first evaluated
    time through its last one."""
    out = []
    for k in np.unique(ds.traj[times]):
        tk = np.sort(times[ds.traj[times] == k])
        members = np.flatnonzero(ds.traj == k)
        start = max(int(members[0]), int(tk[0]) - spinup)
        out.append(np.arange(start, int(tk[-1]) + 1))
    return out


def cycle(ds: ObsDataset, times: np.ndarray, climatology: np.ndarray,
          config: AtmosDAConfig = AtmosDAConfig(), methods: tuple[str, ...] = METHODS,
          model: AtmosphereConfig | None = None, progress=None) -> CycleResult:
    """Cycle the chosen methods through each trajectory's window ending at its evaluated times.

    Parameters
    ----------
    ds : ObsDataset
    times : int array ``(K,)``
        Snapshot indices at which analyses are kept (e.g. the targets ``t + 1`` of held-out
        transitions).
    climatology : (nz, nx)
        Initial background (mean field of the training snapshots).
    config : AtmosDAConfig
    methods : subset of ``METHODS``
    model : AtmosphereConfig, optional
        Forecast model settings; default :func:`model_config` (the true physics).
    progress : callable(fraction, message), optional
    """
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {methods!r}")
    times = np.asarray(times, dtype=np.int64)
    cfg = model or model_config(ds)
    rng = np.random.default_rng(config.seed)
    H = ObsOperator.from_dataset(ds)
    r_std = H.error_std(config.rs_noise, config.sat_noise)
    train_like = np.setdiff1d(np.arange(ds.n_snapshots), times)
    B = SeparableB.gaussian(ds.x, ds.z, climatological_sigma(ds, train_like if train_like.size else times),
                            config.length_scale_x, config.length_scale_z)
    var = Var3D(B, H, r_std) if ("3dvar" in methods or "3dvar_no_model" in methods) else None
    if "enkf" in methods:
        rho_xo, rho_oo = localisation(ds, H, config.loc_x, config.loc_z)
    clim = np.asarray(climatology, float)
    keep = {int(t): i for i, t in enumerate(times)}
    shape = (times.size, *clim.shape)
    an = {m: np.full(shape, np.nan) for m in methods}
    bg = {m: np.full(shape, np.nan) for m in methods}
    spread = np.full(times.size, np.nan)
    jitter = cfg.pulse_jitter
    windows = _windows(ds, times, config.spinup)
    total, done = sum(w.size for w in windows), 0
    for win in windows:
        state = {m: clim.copy() for m in methods if m != "enkf"}
        ens = None
        if "enkf" in methods:
            xi = rng.standard_normal((config.n_members, *clim.shape))
            ens = clim[None] + B.sqrt_apply(xi)
        for step, t in enumerate(win):
            y = H.observe(ds, int(t))
            if step > 0:
                n_steps = int(round((ds.t_snap[t] - ds.t_snap[t - 1]) / cfg.dt))
                t0 = float(ds.t_snap[t - 1])
                if "3dvar" in methods:
                    state["3dvar"] = forecast(cfg, state["3dvar"], n_steps, t0=t0)
                if ens is not None:
                    strength = 1.0 + jitter * rng.uniform(-1.0, 1.0, config.n_members)
                    ens = forecast(cfg, ens, n_steps, t0=t0, strength=strength)
            if ens is not None:
                mean = ens.mean(axis=0)
                ens = mean + config.inflation * (ens - mean)
                fmean = ens.mean(axis=0)
                ens = enkf_analysis(ens, y, H, r_std, rho_xo, rho_oo, rng)
            for m in state:
                xb = state[m]
                state[m] = var.analysis(xb, y)
                if int(t) in keep:
                    bg[m][keep[int(t)]] = xb
            if int(t) in keep:
                i = keep[int(t)]
                for m in state:
                    an[m][i] = state[m]
                if ens is not None:
                    an["enkf"][i] = ens.mean(axis=0)
                    bg["enkf"][i] = fmean
                    spread[i] = float(np.sqrt(ens.var(axis=0, ddof=1).mean()))
            done += 1
            if progress is not None:
                progress(done / total, f"assimilated {done}/{total} times")
    return CycleResult(times=times, analyses=an, backgrounds=bg, spread=spread)


def rmse_series(fields: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Full-field RMSE per time: ``(K, nz, nx)`` against ``(K, nz, nx)`` → ``(K,)``."""
    return np.sqrt(np.mean((np.asarray(fields) - np.asarray(truth)) ** 2, axis=(-2, -1)))
