"""Skill scores: root-mean-square error, Pearson correlation, ensemble spread."""

from __future__ import annotations

import numpy as np


def _pair(a, b, name_a: str = "a", name_b: str = "b"):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError(f"{name_a} and {name_b} must not be empty, got shape {a.shape}")
    return a, b


def rmse(a: np.ndarray, b: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Root-mean-square error ``sqrt(mean((a − b)²))``.

    Parameters
    ----------
    a, b : ndarray, same shape
        Estimate and reference (e.g. ``x_a (T, n)`` and ``x_true (T, n)``).
    axis : int or tuple of int, optional
        Axes to average over; ``None`` averages over all elements. ``axis=-1`` gives the
        RMSE per time over the state components, shape ``(T,)``.

    Returns
    -------
    float or ndarray
        A float for ``axis=None``, otherwise an array with ``axis`` removed.
    """
    a, b = _pair(a, b)
    out = np.sqrt(np.mean((a - b) ** 2, axis=axis))
    return float(out) if axis is None else out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over all elements, ``cov(a, b) / (std(a) std(b))``.

    Parameters
    ----------
    a, b : ndarray, same shape
        Two fields (flattened).

    Returns
    -------
    float
        In ``[−1, 1]``.

    Raises
    ------
    ValueError
        If shapes differ or either input is constant (zero variance).
    """
    a, b = _pair(a, b)
    da, db = a.ravel() - a.mean(), b.ravel() - b.mean()
    na, nb = np.sqrt(np.sum(da**2)), np.sqrt(np.sum(db**2))
    if na == 0 or nb == 0:
        raise ValueError("correlation needs a and b with non-zero variance, got a constant input")
    return float(np.clip(np.dot(da, db) / (na * nb), -1.0, 1.0))


def spread(ensemble: np.ndarray) -> float | np.ndarray:
    """Ensemble spread ``sqrt(mean_i var_i)``: the RMS over components of the member std.

    Parameters
    ----------
    ensemble : ndarray, shape ``(N, n)`` or ``(T, N, n)``
        Members as rows (``N >= 2``); a leading time axis gives one spread per time.

    Returns
    -------
    float or ndarray, shape ``(T,)``
        Comparable with the RMSE of the ensemble mean for a reliable ensemble.
    """
    E = np.asarray(ensemble, dtype=float)
    if E.ndim not in (2, 3) or E.shape[-2] < 2:
        raise ValueError(f"ensemble must have shape (N, n) or (T, N, n) with N >= 2, got {E.shape}")
    out = np.sqrt(np.mean(np.var(E, axis=-2, ddof=1), axis=-1))
    return float(out) if E.ndim == 2 else out
