"""3D-Var / Kalman analysis for a linear observation operator, general sizes ``n`` and ``p``.

The lecture's analysis step, for a background ``x_b``, observations ``y = H x + ε`` with
``ε ~ N(0, R)`` and background-error covariance ``B``:

    innovation   d   = y − H x_b
    gain         K   = B Hᵀ (H B Hᵀ + R)⁻¹
    analysis     x_a = x_b + K d
    covariance   A   = (I − K H) B

3D-Var obtains the same ``x_a`` as the minimiser of

    J(x) = ½ (x − x_b)ᵀ B⁻¹ (x − x_b) + ½ (y − H x)ᵀ R⁻¹ (y − H x),

whose Hessian is ``B⁻¹ + Hᵀ R⁻¹ H = A⁻¹``. :func:`analysis` uses the gain form,
:func:`minimise_3dvar` the variational form (normal equations or a quasi-Newton minimisation
of ``J``), so the two can be checked against each other.

Batches: every function accepts leading batch dimensions that broadcast, e.g. ``x_b (T, n)``,
``y (T, p)``, ``H (T, p, n)``, ``B (T, n, n)``, ``R (p, p)``: one vectorised analysis for ``T``
independent problems (used by the ORIGEN reconstructions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Analysis:
    """Result of one (possibly batched) analysis step."""

    x_a: np.ndarray
    """Analysis state ``x_b + K d``, shape ``(..., n)``."""
    K: np.ndarray
    """Gain ``B Hᵀ (H B Hᵀ + R)⁻¹``, shape ``(..., n, p)``."""
    innovation: np.ndarray
    """Innovation ``d = y − H x_b``, shape ``(..., p)``."""
    A: np.ndarray
    """Analysis-error covariance ``(I − K H) B`` (symmetrised), shape ``(..., n, n)``."""


# ----------------------------------------------------------------------------- validation


def _swap(M: np.ndarray) -> np.ndarray:
    return np.swapaxes(M, -1, -2)


def check_spd(M: np.ndarray, name: str) -> np.ndarray:
    """Return ``M`` as a float array after checking it is a (batch of) SPD matrix.

    Raises
    ------
    ValueError
        If ``M`` is not square ``(..., m, m)``, not finite, not symmetric (relative tolerance
        ``1e-8``) or not positive definite; the message names ``name`` and the offending value.
    """
    M = np.asarray(M, dtype=float)
    if M.ndim < 2 or M.shape[-1] != M.shape[-2]:
        raise ValueError(f"{name} must be a square matrix of shape (..., m, m), got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} must be finite, got NaN or inf entries")
    scale = np.abs(M).max(axis=(-1, -2), keepdims=True) if M.size else 1.0
    asym = np.abs(M - _swap(M))
    if np.any(asym > 1e-8 * scale + 1e-300):
        raise ValueError(f"{name} must be symmetric, got max |{name} - {name}ᵀ| = {asym.max():.3g}")
    try:
        np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        lam = np.linalg.eigvalsh(M).reshape(-1, M.shape[-1])
        worst = lam[np.argmin(lam[:, 0])]                 # the matrix with the smallest eigenvalue
        why = ("" if worst[0] <= 0 else
               f" > 0 but numerically singular (largest {worst[-1]:.3g}, ratio {worst[0] / worst[-1]:.1e})")
        raise ValueError(
            f"{name} must be symmetric positive definite (SPD), got smallest eigenvalue {worst[0]:.3g}{why}"
        ) from None
    return M


def _check_problem(x_b, y, H, B, R, b_semidefinite: bool = False):
    """Validate and convert ``(x_b, y, H, B, R)``; return float arrays. With ``b_semidefinite``
    (a covariance carried by a cycle), ``B`` need only be finite and is symmetrised, not
    Cholesky-checked: propagated through a chaotic model it may be numerically singular."""
    x_b = np.asarray(x_b, dtype=float)
    y = np.asarray(y, dtype=float)
    H = np.asarray(H, dtype=float)
    if x_b.ndim < 1:
        raise ValueError(f"x_b must have shape (..., n), got a scalar {x_b!r}")
    if y.ndim < 1:
        raise ValueError(f"y must have shape (..., p), got a scalar {y!r}")
    if H.ndim < 2:
        raise ValueError(f"H must have shape (..., p, n), got shape {H.shape}")
    n, p = x_b.shape[-1], y.shape[-1]
    if H.shape[-2:] != (p, n):
        raise ValueError(
            f"H must have shape (..., p, n) = (..., {p}, {n}) to match y (..., {p}) and "
            f"x_b (..., {n}), got shape {H.shape}"
        )
    if not (np.all(np.isfinite(x_b)) and np.all(np.isfinite(y)) and np.all(np.isfinite(H))):
        raise ValueError("x_b, y and H must be finite, got NaN or inf entries "
                         "(mask missing observations out of y and H first)")
    if b_semidefinite:
        B = np.asarray(B, dtype=float)
        if B.ndim < 2 or B.shape[-1] != B.shape[-2] or not np.all(np.isfinite(B)):
            raise ValueError(f"B must be a finite square matrix (..., n, n), got shape {B.shape}")
        B = 0.5 * (B + _swap(B))
    else:
        B = check_spd(B, "B")
    R = check_spd(R, "R")
    if B.shape[-1] != n:
        raise ValueError(f"B must have shape (..., n, n) = (..., {n}, {n}), got shape {B.shape}")
    if R.shape[-1] != p:
        raise ValueError(f"R must have shape (..., p, p) = (..., {p}, {p}), got shape {R.shape}")
    try:
        np.broadcast_shapes(x_b.shape[:-1], y.shape[:-1], H.shape[:-2], B.shape[:-2], R.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch dimensions do not broadcast: x_b {x_b.shape}, y {y.shape}, H {H.shape}, "
            f"B {B.shape}, R {R.shape}"
        ) from None
    return x_b, y, H, B, R


def _mv(M: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Batched matrix–vector product ``M v`` for ``M (..., a, b)``, ``v (..., b)``."""
    return (M @ v[..., None])[..., 0]


# ----------------------------------------------------------------------------- analysis


def gain(B: np.ndarray, H: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Kalman / 3D-Var gain ``K = B Hᵀ (H B Hᵀ + R)⁻¹`` (solved, not inverted).

    Parameters
    ----------
    B : ndarray, shape ``(..., n, n)``
        Background-error covariance (SPD).
    H : ndarray, shape ``(..., p, n)``
        Linear observation operator.
    R : ndarray, shape ``(..., p, p)``
        Observation-error covariance (SPD).

    Returns
    -------
    ndarray, shape ``(..., n, p)``
        The gain. For one scalar observation of component ``i`` with ``B = σ_b² I`` and
        ``R = σ_o²`` it is ``σ_b² / (σ_b² + σ_o²)`` in row ``i`` and 0 elsewhere.
    """
    H = np.asarray(H, dtype=float)
    if H.ndim < 2:
        raise ValueError(f"H must have shape (..., p, n), got shape {H.shape}")
    n, p = H.shape[-1], H.shape[-2]
    _check_problem(np.zeros(n), np.zeros(p), H, B, R)
    B, R = np.asarray(B, dtype=float), np.asarray(R, dtype=float)
    return _gain(B, H, R)


def _gain(B: np.ndarray, H: np.ndarray, R: np.ndarray) -> np.ndarray:
    HB = H @ B                                    # (..., p, n)
    S = HB @ _swap(H) + R                         # H B Hᵀ + R, (..., p, p)
    # K = B Hᵀ S⁻¹ = (S⁻¹ H B)ᵀ since B and S are symmetric
    return _swap(np.linalg.solve(S, HB))


def analysis(x_b: np.ndarray, y: np.ndarray, H: np.ndarray, B: np.ndarray,
             R: np.ndarray) -> Analysis:
    """One 3D-Var / Kalman analysis step (gain form).

    ``d = y − H x_b``, ``K = B Hᵀ (H B Hᵀ + R)⁻¹``, ``x_a = x_b + K d``, ``A = (I − K H) B``.

    Parameters
    ----------
    x_b : ndarray, shape ``(..., n)``
        Background state.
    y : ndarray, shape ``(..., p)``
        Observations.
    H : ndarray, shape ``(..., p, n)``
        Linear observation operator.
    B : ndarray, shape ``(..., n, n)``
        Background-error covariance (SPD).
    R : ndarray, shape ``(..., p, p)``
        Observation-error covariance (SPD).

    Returns
    -------
    Analysis
        ``x_a (..., n)``, ``K (..., n, p)``, ``innovation (..., p)``, ``A (..., n, n)``.
        ``A`` is symmetrised, ``½ (A + Aᵀ)``, which removes round-off asymmetry only.

    Raises
    ------
    ValueError
        On inconsistent shapes, non-finite input, or ``B``/``R`` not SPD.
    """
    x_b, y, H, B, R = _check_problem(x_b, y, H, B, R)
    K = _gain(B, H, R)
    d = y - _mv(H, x_b)
    x_a = x_b + _mv(K, d)
    A = B - K @ (H @ B)
    A = 0.5 * (A + _swap(A))
    return Analysis(x_a=x_a, K=K, innovation=d, A=A)


def kalman_update(x_b: np.ndarray, y: np.ndarray, H: np.ndarray, P: np.ndarray,
                  R: np.ndarray) -> Analysis:
    """The analysis of a cycled (extended) Kalman filter, covariance in Joseph form.

    As :func:`analysis`, but ``P`` is a covariance carried by the cycle (symmetric positive
    semi-definite up to round-off, possibly numerically singular: only symmetrised, not
    Cholesky-checked), and ``A = (I − K H) P (I − K H)ᵀ + K R Kᵀ`` (Joseph form; Bucy & Joseph
    1968), which stays symmetric positive semi-definite for any gain where ``(I − K H) P`` can
    lose both to round-off over many cycles.

    Returns
    -------
    Analysis
        ``x_a (..., n)``, ``K (..., n, p)``, ``innovation (..., p)``, ``A (..., n, n)`` (symmetrised).
    """
    x_b, y, H, P, R = _check_problem(x_b, y, H, P, R, b_semidefinite=True)
    K = _gain(P, H, R)
    d = y - _mv(H, x_b)
    IKH = np.eye(x_b.shape[-1]) - K @ H
    A = IKH @ P @ _swap(IKH) + K @ R @ _swap(K)
    return Analysis(x_a=x_b + _mv(K, d), K=K, innovation=d, A=0.5 * (A + _swap(A)))


# ----------------------------------------------------------------------------- variational form


def cost(x: np.ndarray, x_b: np.ndarray, y: np.ndarray, H: np.ndarray, B: np.ndarray,
         R: np.ndarray) -> np.ndarray:
    """3D-Var cost ``J(x) = ½ (x − x_b)ᵀ B⁻¹ (x − x_b) + ½ (y − H x)ᵀ R⁻¹ (y − H x)``.

    Parameters
    ----------
    x : ndarray, shape ``(..., n)``
        State at which ``J`` is evaluated.
    x_b, y, H, B, R
        As in :func:`analysis`.

    Returns
    -------
    ndarray, shape ``(...)``
        ``J(x)`` (a 0-d array for a single problem).
    """
    x_b, y, H, B, R = _check_problem(x_b, y, H, B, R)
    x = _check_x(x, x_b)
    dx = x - x_b
    r = y - _mv(H, x)
    jb = 0.5 * np.sum(dx * np.linalg.solve(B, dx[..., None])[..., 0], axis=-1)
    jo = 0.5 * np.sum(r * np.linalg.solve(R, r[..., None])[..., 0], axis=-1)
    return jb + jo


def cost_gradient(x: np.ndarray, x_b: np.ndarray, y: np.ndarray, H: np.ndarray,
                  B: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Gradient ``∇J(x) = B⁻¹ (x − x_b) − Hᵀ R⁻¹ (y − H x)``.

    Parameters
    ----------
    x : ndarray, shape ``(..., n)``
        State at which the gradient is evaluated.
    x_b, y, H, B, R
        As in :func:`analysis`.

    Returns
    -------
    ndarray, shape ``(..., n)``
        The gradient; it vanishes at the analysis ``x_a``.
    """
    x_b, y, H, B, R = _check_problem(x_b, y, H, B, R)
    x = _check_x(x, x_b)
    gb = np.linalg.solve(B, (x - x_b)[..., None])[..., 0]
    go = _mv(_swap(H), np.linalg.solve(R, (y - _mv(H, x))[..., None])[..., 0])
    return gb - go


def hessian(H: np.ndarray, B: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Hessian of the 3D-Var cost, ``∇²J = B⁻¹ + Hᵀ R⁻¹ H`` (equal to ``A⁻¹``).

    Parameters
    ----------
    H : ndarray, shape ``(..., p, n)``
    B : ndarray, shape ``(..., n, n)``
    R : ndarray, shape ``(..., p, p)``

    Returns
    -------
    ndarray, shape ``(..., n, n)``
    """
    H = np.asarray(H, dtype=float)
    if H.ndim < 2:
        raise ValueError(f"H must have shape (..., p, n), got shape {H.shape}")
    n, p = H.shape[-1], H.shape[-2]
    _, _, H, B, R = _check_problem(np.zeros(n), np.zeros(p), H, B, R)
    eye = np.eye(n)
    return np.linalg.solve(B, np.broadcast_to(eye, B.shape)) + _swap(H) @ np.linalg.solve(R, H)


def minimise_3dvar(x_b: np.ndarray, y: np.ndarray, H: np.ndarray, B: np.ndarray,
                   R: np.ndarray, method: str = "normal") -> np.ndarray:
    """Minimiser of the 3D-Var cost ``J`` by the variational route.

    ``method="normal"`` solves the normal equations

        (B⁻¹ + Hᵀ R⁻¹ H) x = B⁻¹ x_b + Hᵀ R⁻¹ y,

    ``method="bfgs"`` minimises ``J`` with ``scipy.optimize.minimize`` (BFGS) and the analytic
    gradient :func:`cost_gradient`, started from ``x_b`` (single problems only, no batch).
    In the linear-Gaussian case both equal the gain-form :func:`analysis` ``x_a``.

    Parameters
    ----------
    x_b, y, H, B, R
        As in :func:`analysis`.
    method : {"normal", "bfgs"}
        Route to the minimum.

    Returns
    -------
    ndarray, shape ``(..., n)``
        ``argmin J``.
    """
    if method not in ("normal", "bfgs"):
        raise ValueError(f"method must be 'normal' or 'bfgs', got {method!r}")
    x_b, y, H, B, R = _check_problem(x_b, y, H, B, R)
    if method == "normal":
        hess = hessian(H, B, R)
        rhs = (np.linalg.solve(B, x_b[..., None])[..., 0]
               + _mv(_swap(H), np.linalg.solve(R, y[..., None])[..., 0]))
        return np.linalg.solve(hess, rhs[..., None])[..., 0]

    from scipy.optimize import minimize

    if x_b.ndim != 1 or y.ndim != 1 or H.ndim != 2 or B.ndim != 2 or R.ndim != 2:
        raise ValueError(
            f"method='bfgs' takes a single problem (x_b (n,), y (p,), H (p, n), B, R 2-D), "
            f"got shapes x_b {x_b.shape}, y {y.shape}, H {H.shape}, B {B.shape}, R {R.shape}"
        )
    # Precondition with the scale of J so that the gradient tolerance is relative.
    g0 = np.linalg.norm(cost_gradient(x_b, x_b, y, H, B, R)) or 1.0
    res = minimize(
        lambda x: float(cost(x, x_b, y, H, B, R)) / g0,
        x_b,
        jac=lambda x: cost_gradient(x, x_b, y, H, B, R) / g0,
        method="BFGS",
        options={"gtol": 1e-12, "maxiter": 1000},
    )
    return np.asarray(res.x, dtype=float)


def _check_x(x, x_b):
    x = np.asarray(x, dtype=float)
    if x.ndim < 1 or x.shape[-1] != x_b.shape[-1]:
        raise ValueError(f"x must have shape (..., n) with n = {x_b.shape[-1]}, got shape {x.shape}")
    return x
