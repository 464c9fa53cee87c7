"""The lecture's two assimilation loops, for any state size ``n``: the sequential 3D-Var /
Kalman cycle along time, and ORIGEN's iteration over the whole trajectory.

Both read observations as an array ``y (T, n)`` with NaN where a component is not observed
(``H`` selects the observed components, ``R = diag(σ_o²)`` on them); the model modules
(:mod:`toyda.oscillator`, :mod:`toyda.lorenz63`, :mod:`toyda.origen_lecture`) only supply their
truth, observation patterns and forecast step.

* :func:`sequential` — for ``k = 0, …, T−1``: ``K_k = B_k H_kᵀ (H_k B_k H_kᵀ + R)⁻¹``,
  ``x_k^a = x_k^b + K_k (y_k − H_k x_k^b)``, forecast ``x_{k+1}^b = M(x_k^a)`` (persistence
  when there is no model). ``B_k = B_0`` (3D-Var) or, with ``covariance_update``, the Kalman
  update in Joseph form ``A_k = (I − K H) B_k (I − K H)ᵀ + K R Kᵀ`` (Bucy & Joseph 1968) carried
  forward as ``B_{k+1} = ρ M_k A_k M_kᵀ + Q`` (``M_k`` the tangent-linear of the step, ``ρ`` a
  multiplicative inflation, ``Q`` model error).
* :func:`origen` — cycle 0 is either that sequential cycle (with the fixed ``B_0``) or one
  batched analysis from a given background; every later cycle analyses each time index with the
  previous cycle's reconstruction as background, all ``T`` analyses in one batched computation,
  and with ``covariance_update`` carries ``B_k ← A_k`` per time index (Kalman-style uncertainty
  adaptation; see the lecture's ORIGEN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from toyda import var3d

Forecast = Callable[[np.ndarray, int, bool], tuple[np.ndarray, np.ndarray | None]]
"""``forecast(x_a (n,), k, with_tlm) -> (x_b (n,) at k+1, M_k (n, n) or None)``"""


@dataclass(frozen=True)
class Sequence:
    """Result of :func:`sequential` over ``T`` times."""

    x_b: np.ndarray
    """``(T, n)`` backgrounds"""
    x_a: np.ndarray
    """``(T, n)`` analyses (the background where nothing was observed)"""
    K: np.ndarray
    """``(T, n, n)`` gains; column ``j`` is zero where component ``j`` was not observed"""
    innovation: np.ndarray
    """``(T, n)`` ``y − x_b`` on the observed components, NaN elsewhere"""
    B: np.ndarray
    """``(T, n, n)`` background-error covariance used at each time"""
    A: np.ndarray
    """``(T, n, n)`` analysis-error covariance at each time"""
    n_obs: np.ndarray
    """``(T,)`` number of observed components at each time"""


@dataclass(frozen=True)
class Iterations:
    """Result of :func:`origen` over ``C`` cycles."""

    x_a: np.ndarray
    """``(C, T, n)`` reconstruction after each cycle"""
    increment: np.ndarray
    """``(C,)`` RMS change of the reconstruction in each cycle (cycle 0: analysis − background)"""
    sigma_a: np.ndarray
    """``(C,)`` analysis-error std, ``sqrt(mean_k tr(A_k) / n)``"""
    y: np.ndarray
    """``(T, n)`` the last cycle's observations (NaN where not observed)"""
    B: np.ndarray
    """``(T, n, n)`` the covariance per time after the last cycle"""
    first: Sequence | None
    """cycle 0's sequential cycle (None when cycle 0 was a batched analysis)"""


def masked_problem(y: np.ndarray, sigma_o: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-size ``(H, R, y)`` for observations ``y (..., n)`` with NaN where not observed.

    Unobserved components get a zero row in ``H`` and unit variance in ``R``, so they do not enter
    the analysis: ``H = diag(mask)``, ``R = diag(σ_o²)`` on observed components.
    """
    n = y.shape[-1]
    mask = ~np.isnan(y)
    H = mask[..., None] * np.eye(n)
    R = np.where(mask, sigma_o**2, 1.0)[..., None] * np.eye(n)
    return H, R, np.where(mask, y, 0.0)


def check_observations(y, n: int) -> np.ndarray:
    """``y`` as a float array ``(T, n)``: NaN allowed (not observed), inf not, at least one value."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[1] != n or y.shape[0] < 1:
        raise ValueError(f"y must have shape (T, {n}) with NaN where not observed, got {y.shape}")
    if np.any(np.isinf(y)):
        raise ValueError("y must not contain inf (use NaN for missing observations)")
    if np.all(np.isnan(y)):
        raise ValueError("y must contain at least one observation, got all NaN")
    return y


def _analyse(x_b, y, H, B, R, joseph: bool) -> var3d.Analysis:
    return (var3d.kalman_update if joseph else var3d.analysis)(x_b, y, H, B, R)


def sequential(y: np.ndarray, sigma_o: np.ndarray, x0_b: np.ndarray, B0: np.ndarray,
               forecast: Forecast | None = None, covariance_update: bool = False,
               Q: np.ndarray | None = None, inflation: float = 1.0) -> Sequence:
    """The sequential 3D-Var / Kalman cycle along time (see the module docstring).

    Parameters
    ----------
    y : ndarray, shape ``(T, n)``
        Observations, NaN where not observed (an all-NaN row: no analysis at that time).
    sigma_o : ndarray, shape ``(n,)``
        Observation-error std per component.
    x0_b : ndarray, shape ``(n,)``
        First background.
    B0 : ndarray, shape ``(n, n)``
        Background-error covariance (static, or the first one with ``covariance_update``).
    forecast : callable, optional
        The model step between observation times (:data:`Forecast`); None: persistence.
    covariance_update : bool
        Carry the analysis covariance forward (Kalman) instead of resetting to ``B0``.
    Q : ndarray, shape ``(n, n)``, optional
        Model-error covariance added per step with ``covariance_update`` (default 0).
    inflation : float
        Multiplicative inflation ``ρ >= 1`` of the propagated covariance with ``covariance_update``.

    Returns
    -------
    Sequence
    """
    T, n = y.shape
    H, R, yf = masked_problem(y, sigma_o)
    n_obs = (~np.isnan(y)).sum(axis=1)
    Q = np.zeros((n, n)) if Q is None else Q
    x = np.asarray(x0_b, dtype=float)
    out = {name: np.empty((T, n)) for name in ("x_b", "x_a")}
    out_K, out_B, out_A = np.zeros((T, n, n)), np.empty((T, n, n)), np.empty((T, n, n))
    innovation = np.full((T, n), np.nan)
    B = B0
    for k in range(T):
        out["x_b"][k], out_B[k] = x, B
        if n_obs[k]:
            an = _analyse(x, yf[k], H[k], B, R[k], joseph=covariance_update)
            observed = ~np.isnan(y[k])
            innovation[k, observed] = an.innovation[observed]
            out_K[k] = an.K * observed
            x, A = an.x_a, an.A
        else:
            A = B
        out["x_a"][k], out_A[k] = x, A
        if k == T - 1:
            break
        M = None
        if forecast is not None:
            x, M = forecast(x, k, covariance_update)
        if covariance_update:
            B = inflation * (A if M is None else M @ A @ M.T) + Q
            B = 0.5 * (B + B.T)
        else:
            B = B0
    return Sequence(x_b=out["x_b"], x_a=out["x_a"], K=out_K, innovation=innovation, B=out_B,
                    A=out_A, n_obs=n_obs)


def origen(draw: Callable[[int], np.ndarray], n_cycles: int, sigma_o: np.ndarray, B0: np.ndarray,
           x0_b: np.ndarray | None = None, start: str = "sequential", covariance_update: bool = True,
           joseph: bool = False) -> Iterations:
    """ORIGEN: iterative reconstruction of a whole trajectory (see the module docstring).

    Parameters
    ----------
    draw : callable
        ``draw(c) -> y (T, n)``: the observations of cycle ``c`` (NaN where not observed); called
        once per cycle, in order ``c = 0, 1, …``.
    n_cycles : int
        Number of cycles ``C >= 1`` (including cycle 0).
    sigma_o : ndarray, shape ``(n,)``
        Observation-error std per component.
    B0 : ndarray, shape ``(n, n)``
        The first background-error covariance (every time index).
    x0_b : ndarray, optional
        ``start="sequential"``: the first background ``(n,)`` of the cycle along time (default: the
        mean of cycle 0's observations per component, 0 where never observed);
        ``start="batched"``: the background ``(T, n)`` of every time (default 0).
    start : {"sequential", "batched"}
        Cycle 0 as the persistence 3D-Var cycle along time (fixed ``B0``), or as one batched
        analysis of every time from ``x0_b`` with ``B0`` (the lecture notebook's way).
    covariance_update : bool
        ``B_k ← A_k`` per time index across cycles (else fixed ``B0``).
    joseph : bool
        Compute ``A_k`` in Joseph form (else ``(I − K H) B``, the same for the optimal gain).

    Returns
    -------
    Iterations
    """
    if start not in ("sequential", "batched"):
        raise ValueError(f"start must be 'sequential' or 'batched', got {start!r}")
    y = draw(0)
    T, n = y.shape
    x_a = np.empty((n_cycles, T, n))
    increment, sigma_a = np.empty(n_cycles), np.empty(n_cycles)
    first = None
    B = np.broadcast_to(B0, (T, n, n))
    if start == "sequential":
        if x0_b is None:
            counts = np.sum(~np.isnan(y), axis=0)
            x0_b = np.where(counts > 0, np.nansum(y, axis=0) / np.maximum(counts, 1), 0.0)
        first = sequential(y, sigma_o, x0_b, B0)
        x_a[0], x_b, A = first.x_a, first.x_b, first.A
    else:
        x_b = np.zeros((T, n)) if x0_b is None else np.broadcast_to(x0_b, (T, n))
        H, R, yf = masked_problem(y, sigma_o)
        an = _analyse(x_b, yf, H, B, R, joseph)
        x_a[0], A = an.x_a, an.A
        if covariance_update:
            B = an.A
    increment[0] = np.sqrt(np.mean((x_a[0] - x_b) ** 2))
    sigma_a[0] = np.sqrt(np.mean(np.trace(A, axis1=1, axis2=2)) / n)
    for c in range(1, n_cycles):
        y = draw(c)
        H, R, yf = masked_problem(y, sigma_o)
        an = _analyse(x_a[c - 1], yf, H, B, R, joseph)
        x_a[c] = an.x_a
        increment[c] = np.sqrt(np.mean((x_a[c] - x_a[c - 1]) ** 2))
        sigma_a[c] = np.sqrt(np.mean(np.trace(an.A, axis1=1, axis2=2)) / n)
        if covariance_update:
            B = an.A
    return Iterations(x_a=x_a, increment=increment, sigma_a=sigma_a, y=y, B=np.array(B), first=first)
