"""Argument checks shared by the toyda modules: each raises a ValueError naming the argument and
what is allowed."""

from __future__ import annotations

import numpy as np


def positive(value, name: str) -> float:
    """``value`` as a float, checked finite and ``> 0``."""
    if isinstance(value, bool) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, checked integral and ``>= minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def generator(rng) -> np.random.Generator:
    """``rng``, checked to be a :class:`numpy.random.Generator`."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return rng


def sigma_vector(sigma_o, n: int, name: str = "sigma_o") -> np.ndarray:
    """``sigma_o`` (a number or an array ``(n,)``) as an array ``(n,)`` of finite stds > 0."""
    s = np.asarray(sigma_o, dtype=float)
    if s.shape not in ((), (n,)):
        raise ValueError(f"{name} must be a number or an array of shape ({n},), got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {sigma_o!r}")
    return np.broadcast_to(s, (n,)).copy()


def variance_growth(q: float, inflation: float) -> tuple[float, float]:
    """``(q, inflation)`` checked: model-error variance ``q >= 0`` and inflation ``>= 1``."""
    if isinstance(q, bool) or not np.isfinite(q) or q < 0:
        raise ValueError(f"q must be a finite number >= 0, got {q!r}")
    if isinstance(inflation, bool) or not np.isfinite(inflation) or inflation < 1:
        raise ValueError(f"inflation must be a finite number >= 1 (1: no inflation), got {inflation!r}")
    return float(q), float(inflation)
