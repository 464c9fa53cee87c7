"""ORIGEN on a minimal example: the oscillator on the unit circle.

Truth ``x_k = [cos θ_k, sin θ_k]``, ``θ_k = 2πk/n``; one scalar observation per step,
``y_k = H_k x_k + ε_k``, ``H_k ∈ {[1, 0], [0, 1]}``, ``ε_k ~ N(0, σ_o²)``; background
covariance ``B = diag(σ_b², σ_b²)``, ``R = σ_o²``. Three demonstrations from the lecture:

* :func:`cycle_3dvar` — the time-sequential 3D-Var cycle with the persistence model
  ``x_{k+1}^b = x_k^a`` (optionally with the covariance update ``B ← A``).
* :func:`sequential_rounds` — observe ``x1`` everywhere, then ``x2`` everywhere with
  ``x_k^{b,(2)} := x_k^{a,(1)}``: with complete information two rounds suffice.
* :func:`origen_reconstruction` — iterative reconstruction of the whole trajectory over cycles:
  with a fixed ``B`` the RMSE plateaus (3D-Var keeps letting observation error in), with the
  Kalman covariance update ``B_k ← A_k`` it converges like ``1/√cycles``.

Defaults (:class:`OscillatorConfig`) are chosen so that both lecture messages show clearly with
``σ_o = 0.2``: ``σ_b = 0.3`` is about the error of the persistence cycle (so ``B`` is roughly
consistent when ORIGEN starts), and 40 cycles give every component at every time about 20
observations, i.e. a final RMSE of about ``σ_o/√20 ≈ 0.22 σ_o`` with the covariance update,
against a plateau of ``σ_o √(g/(2−g)) ≈ 0.7 σ_o`` (``g = σ_b²/(σ_b²+σ_o²)``) with fixed ``B``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toyda import cycling, metrics, var3d
from toyda.checks import count, generator, positive, variance_growth

PATTERNS = ("random", "alternating", "x1", "x2")
"""Observation patterns: which component is observed at each step."""


@dataclass(frozen=True)
class OscillatorConfig:
    """Lecture defaults for the oscillator demos."""

    n_steps: int = 100
    """Steps per revolution ``n`` (``θ_k = 2πk/n``), also the trajectory length ``T``."""
    sigma_b: float = 0.3
    """Background-error std ``σ_b`` of ``B = diag(σ_b², σ_b²)``."""
    sigma_o: float = 0.2
    """Observation-error std ``σ_o`` (``R = σ_o²``)."""
    n_cycles: int = 40
    """ORIGEN reconstruction cycles ``C`` (cycle 0 is the persistence 3D-Var cycle)."""
    obs_pattern: str = "random"
    """Which component is observed at each step: one of ``PATTERNS``."""


DEFAULTS = OscillatorConfig()


@dataclass(frozen=True)
class Cycle:
    """Time-sequential 3D-Var cycle with the persistence model."""

    x_b: np.ndarray
    """Backgrounds ``x_k^b``, shape ``(T, 2)``."""
    x_a: np.ndarray
    """Analyses ``x_k^a``, shape ``(T, 2)``."""
    K: np.ndarray
    """Gains ``K_k`` (one scalar observation per step), shape ``(T, 2)``."""
    B: np.ndarray
    """Background covariances used at each step, shape ``(T, 2, 2)``."""
    A: np.ndarray
    """Analysis covariances ``(I − K_k H_k) B_k``, shape ``(T, 2, 2)``."""
    innovation: np.ndarray
    """Innovations ``d_k = y_k − H_k x_k^b``, shape ``(T,)``."""


@dataclass(frozen=True)
class SequentialRounds:
    """The two-round demo: ``x1`` observed everywhere, then ``x2`` everywhere."""

    x_a1: np.ndarray
    """Round-1 analyses (persistence cycle, ``x1`` observed at every step), shape ``(T, 2)``."""
    x_a2: np.ndarray
    """Round-2 analyses (``x2`` observed, background ``x_k^{a,(1)}``), shape ``(T, 2)``."""
    y1: np.ndarray
    """Round-1 observations of ``x1``, shape ``(T,)``."""
    y2: np.ndarray
    """Round-2 observations of ``x2``, shape ``(T,)``."""
    rmse: np.ndarray
    """RMSE per round (rows) and component (columns ``x1, x2``), shape ``(2, 2)``."""


@dataclass(frozen=True)
class Reconstruction:
    """ORIGEN iterative reconstruction of the whole trajectory over cycles."""

    x_a: np.ndarray
    """Reconstructed trajectory of every cycle, shape ``(C, T, 2)``."""
    rmse: np.ndarray
    """RMSE against the truth per cycle, shape ``(C,)``."""
    sigma_a: np.ndarray
    """The filter's own error estimate per cycle, ``sqrt(mean_k tr(A_k)/2)``, shape ``(C,)``."""
    y: np.ndarray
    """Observations of the last cycle, shape ``(T,)``."""
    which: np.ndarray
    """Observed component of the last cycle (0: ``x1``, 1: ``x2``), shape ``(T,)``."""
    B: np.ndarray
    """Background covariance per time after the last cycle (``A_k`` of the last cycle when
    the covariance is updated, else ``diag(σ_b², σ_b²)``), shape ``(T, 2, 2)``."""


# ----------------------------------------------------------------------------- validation


def _check_truth(x_true: np.ndarray) -> np.ndarray:
    x_true = np.asarray(x_true, dtype=float)
    if x_true.ndim != 2 or x_true.shape[1] != 2 or x_true.shape[0] < 1:
        raise ValueError(f"x_true must have shape (T, 2) with T >= 1, got {x_true.shape}")
    return x_true


# ----------------------------------------------------------------------------- truth and obs


def truth(n_steps: int = DEFAULTS.n_steps) -> np.ndarray:
    """Truth on the unit circle, ``x_k = [cos θ_k, sin θ_k]``, ``θ_k = 2πk/n``.

    Parameters
    ----------
    n_steps : int
        ``n``: steps per revolution and number of states ``T`` (``>= 1``).

    Returns
    -------
    ndarray, shape ``(n_steps, 2)``
        One revolution, ``k = 0, …, n − 1``.
    """
    n = count(n_steps, "n_steps")
    theta = 2.0 * np.pi * np.arange(n) / n
    return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def pattern_indices(pattern: str, n_steps: int, rng: np.random.Generator | None = None,
                    phase: int = 0) -> np.ndarray:
    """Selector ``s_k`` (0: ``x1``, 1: ``x2``) of the observed component at each step.

    Parameters
    ----------
    pattern : {"random", "alternating", "x1", "x2"}
        ``random``: ``x1`` or ``x2`` with probability ½ each (needs ``rng``);
        ``alternating``: ``x1, x2, x1, …`` (shifted by ``phase``); ``x1``/``x2``: always that one.
    n_steps : int
        ``T``.
    rng : numpy.random.Generator, optional
        Required for ``"random"``.
    phase : int
        Shift of the alternating pattern (``s_k = (k + phase) mod 2``).

    Returns
    -------
    ndarray of int, shape ``(T,)``
    """
    T = count(n_steps, "n_steps")
    if pattern == "random":
        return generator(rng).integers(0, 2, size=T)
    if pattern == "alternating":
        return (np.arange(T) + int(phase)) % 2
    if pattern in ("x1", "x2"):
        return np.full(T, 0 if pattern == "x1" else 1)
    raise ValueError(f"obs_pattern must be one of {PATTERNS}, got {pattern!r}")


def observe(x_true: np.ndarray, pattern: str = DEFAULTS.obs_pattern,
            sigma_o: float = DEFAULTS.sigma_o, rng: np.random.Generator | None = None,
            phase: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scalar partial observations ``y_k = H_k x_k + ε_k``, ``ε_k ~ N(0, σ_o²)``.

    Parameters
    ----------
    x_true : ndarray, shape ``(T, 2)``
        Truth.
    pattern : {"random", "alternating", "x1", "x2"}
        Which component is observed at each step (see :func:`pattern_indices`).
    sigma_o : float
        Observation-error std (``> 0``).
    rng : numpy.random.Generator
        Source of the noise (and of the random pattern).
    phase : int
        Shift of the alternating pattern.

    Returns
    -------
    y : ndarray, shape ``(T,)``
        Observations.
    which : ndarray of int, shape ``(T,)``
        Observed component (0: ``x1``, 1: ``x2``), i.e. ``H_k = e_{which_k}ᵀ``.
    """
    x_true = _check_truth(x_true)
    sigma_o = positive(sigma_o, "sigma_o")
    rng = generator(rng)
    T = x_true.shape[0]
    which = pattern_indices(pattern, T, rng, phase)
    y = x_true[np.arange(T), which] + sigma_o * rng.standard_normal(T)
    return y, which


def observation_operators(which: np.ndarray) -> np.ndarray:
    """Operators ``H_k = [1, 0]`` or ``[0, 1]`` for the selectors ``which``.

    Parameters
    ----------
    which : ndarray of int, shape ``(T,)``
        Values in ``{0, 1}``.

    Returns
    -------
    ndarray, shape ``(T, 1, 2)``
    """
    which = _check_which(which)
    return np.eye(2)[which][:, None, :]


def _as_masked(y: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Scalar observations ``y (T,)`` of components ``which (T,)`` as ``(T, 2)`` with NaN where not observed."""
    Y = np.full((y.shape[0], 2), np.nan)
    Y[np.arange(y.shape[0]), which] = y
    return Y


def _check_which(which, T: int | None = None) -> np.ndarray:
    which = np.asarray(which)
    if which.ndim != 1 or (T is not None and which.shape[0] != T):
        raise ValueError(f"which must have shape (T,) = ({T},), got {which.shape}")
    if not np.all(np.isin(which, (0, 1))):
        raise ValueError(f"which must contain only 0 (x1) and 1 (x2), got values {np.unique(which)}")
    return which.astype(int)


# ----------------------------------------------------------------------------- the 3D-Var cycle


def cycle_3dvar(y: np.ndarray, which: np.ndarray, sigma_b: float = DEFAULTS.sigma_b,
                sigma_o: float = DEFAULTS.sigma_o, x0_b: np.ndarray | None = None,
                covariance_update: bool = False, q: float = 0.0, inflation: float = 1.0) -> Cycle:
    """Time-sequential 3D-Var cycle with the persistence model ``M(x) = x``.

    For ``k = 0, …, T−1``: ``d_k = y_k − H_k x_k^b``, ``K_k = B_k H_kᵀ (H_k B_k H_kᵀ + σ_o²)⁻¹``,
    ``x_k^a = x_k^b + K_k d_k``, then ``x_{k+1}^b = x_k^a``. ``B_k = diag(σ_b², σ_b²)`` for all
    ``k`` (fixed ``B``), or with ``covariance_update=True`` the Kalman update
    ``A_k = (I − K_k H_k) B_k``, ``B_{k+1} = ρ A_k + Q`` with ``Q = q I`` (``ρ``: ``inflation``).
    The loop is :func:`toyda.cycling.sequential` (shared with Lorenz-63).

    With the covariance update and no model-error term (``q = 0``, ``ρ = 1``) the variances only
    shrink, ``1/B_{k+1} = 1/B_k + 1/σ_o²`` in the observed component, so the gain decays like
    ``1/k`` and the filter stops listening to the observations while the truth moves round the
    circle: the analysis lags further and further behind (persistence is a wrong model). This is
    filter divergence. Model error ``q > 0`` (variance added per step, the error persistence makes)
    or multiplicative inflation ``ρ > 1`` keep ``B`` — and so the gain — from collapsing: the
    variance settles where what one observation removes balances what a step adds.

    Parameters
    ----------
    y : ndarray, shape ``(T,)``
        Scalar observations.
    which : ndarray of int, shape ``(T,)``
        Observed component per step (0: ``x1``, 1: ``x2``).
    sigma_b, sigma_o : float
        Background and observation error std (``> 0``).
    x0_b : ndarray, shape ``(2,)``, optional
        First background; default ``(0, 0)``, the centre of the circle (no prior knowledge).
    covariance_update : bool
        Kalman-type update ``B ← A`` along the time sequence.
    q : float
        Model-error variance added after each step when ``covariance_update`` (``>= 0``).
    inflation : float
        Multiplicative covariance inflation ``ρ >= 1`` of ``A_k`` before the next step when
        ``covariance_update`` (``1``: none).

    Returns
    -------
    Cycle
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or y.shape[0] < 1 or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be a finite array of shape (T,) with T >= 1, got shape {y.shape}")
    T = y.shape[0]
    which = _check_which(which, T)
    sigma_b = positive(sigma_b, "sigma_b")
    sigma_o = positive(sigma_o, "sigma_o")
    q, inflation = variance_growth(q, inflation)
    x = np.zeros(2) if x0_b is None else np.asarray(x0_b, dtype=float)
    if x.shape != (2,) or not np.all(np.isfinite(x)):
        raise ValueError(f"x0_b must be a finite array of shape (2,), got {x0_b!r}")
    seq = cycling.sequential(_as_masked(y, which), np.full(2, sigma_o), x, sigma_b**2 * np.eye(2),
                             covariance_update=covariance_update, Q=q * np.eye(2), inflation=inflation)
    k = np.arange(T)
    return Cycle(x_b=seq.x_b, x_a=seq.x_a, K=seq.K[k, :, which], B=seq.B, A=seq.A,
                 innovation=seq.innovation[k, which])


# ----------------------------------------------------------------------------- two rounds


def sequential_rounds(x_true: np.ndarray, sigma_b: float = DEFAULTS.sigma_b,
                      sigma_o: float = 0.05, rng: np.random.Generator | None = None,
                      x0_b: np.ndarray | None = None) -> SequentialRounds:
    """The two-round demo: with all observations, ORIGEN-style cycling converges in two rounds.

    Round 1 observes ``x1`` at every step, ``y_k^{(1)} = x_{1,k} + ε_k``, in the persistence
    3D-Var cycle (:func:`cycle_3dvar`, fixed ``B``). Round 2 observes ``x2`` at every step,
    ``y_k^{(2)} = x_{2,k} + ε_k``, with background ``x_k^{b,(2)} := x_k^{a,(1)}``: one analysis per
    time index (vectorised over ``k``), ``B`` reset to ``diag(σ_b², σ_b²)``. (Carrying
    ``A_k^{(1)}`` instead gives the same round-2 result: with diagonal ``B`` round 1 leaves the
    ``x2`` variance at ``σ_b²``, and ``x1`` is not observed in round 2.)

    With small ``σ_o`` (default 0.05): after round 1 ``x1`` matches the truth and ``x2`` is still
    the first background; after round 2 both components match.

    Parameters
    ----------
    x_true : ndarray, shape ``(T, 2)``
        Truth.
    sigma_b, sigma_o : float
        Background and observation error std (``> 0``).
    rng : numpy.random.Generator
        Source of the observation noise.
    x0_b : ndarray, shape ``(2,)``, optional
        First background of round 1; default ``(0, 0)``.

    Returns
    -------
    SequentialRounds
    """
    x_true = _check_truth(x_true)
    rng = generator(rng)
    sigma_b = positive(sigma_b, "sigma_b")
    sigma_o = positive(sigma_o, "sigma_o")
    T = x_true.shape[0]
    y1, w1 = observe(x_true, "x1", sigma_o, rng)
    round1 = cycle_3dvar(y1, w1, sigma_b, sigma_o, x0_b=x0_b)
    y2, w2 = observe(x_true, "x2", sigma_o, rng)
    B = sigma_b**2 * np.eye(2)
    round2 = var3d.analysis(round1.x_a, y2[:, None], observation_operators(w2), B,
                            np.array([[sigma_o**2]]))
    rmse = np.stack([metrics.rmse(round1.x_a, x_true, axis=0),
                     metrics.rmse(round2.x_a, x_true, axis=0)])
    return SequentialRounds(x_a1=round1.x_a, x_a2=round2.x_a, y1=y1, y2=y2, rmse=rmse)


# ----------------------------------------------------------------------------- ORIGEN


def origen_reconstruction(x_true: np.ndarray, n_cycles: int = DEFAULTS.n_cycles,
                          sigma_b: float = DEFAULTS.sigma_b, sigma_o: float = DEFAULTS.sigma_o,
                          covariance_update: bool = False,
                          rng: np.random.Generator | None = None,
                          pattern: str = DEFAULTS.obs_pattern,
                          x0_b: np.ndarray | None = None) -> Reconstruction:
    """ORIGEN: iterative 3D-Var reconstruction of the whole trajectory over cycles.

    Cycle 0 is the persistence-cycled 3D-Var (:func:`cycle_3dvar`, fixed ``B``): the "current
    model" is persistence. In every later cycle ``c`` new observations are drawn (a new pattern
    and new noise) and every time index is analysed with the previous cycle's reconstruction as
    background, ``x_k^{b,(c)} = x_k^{a,(c−1)}``: no model is integrated, the sequence itself is
    improved; the ``T`` analyses of a cycle are one batched 2×2 computation. ``B`` per time
    index starts at ``diag(σ_b², σ_b²)`` in cycle 1 and is either kept (fixed ``B``) or updated
    Kalman-style and carried across cycles, ``A_k^{(c)} = (I − K_k H_k) B_k^{(c)}``,
    ``B_k^{(c+1)} = A_k^{(c)}``.

    Fixed ``B``: each component is a running average with a fixed weight
    ``g = σ_b²/(σ_b²+σ_o²)`` and the RMSE plateaus at about ``σ_o √(g/(2−g))``: 3D-Var keeps
    letting observation error in. Covariance update: component ``i`` at time ``k`` after
    ``m`` observations has variance ``1/(1/σ_b² + m/σ_o²)``, so the RMSE keeps decreasing like
    ``σ_o √(2/c)``: uncertainty adaptation makes the iteration converge.

    Parameters
    ----------
    x_true : ndarray, shape ``(T, 2)``
        Truth (observed through :func:`observe`, and the reference for the RMSE).
    n_cycles : int
        Number of cycles ``C >= 1`` (including cycle 0).
    sigma_b, sigma_o : float
        Background and observation error std (``> 0``).
    covariance_update : bool
        Update ``B_k ← A_k`` per time index across cycles (else fixed ``B``).
    rng : numpy.random.Generator
        Source of the observation patterns and noise.
    pattern : {"random", "alternating", "x1", "x2"}
        Observation pattern drawn anew each cycle (``alternating`` swaps phase every cycle;
        ``x1``/``x2`` never inform the other component).
    x0_b : ndarray, shape ``(2,)``, optional
        First background of cycle 0; default ``(0, 0)``.

    Returns
    -------
    Reconstruction
    """
    x_true = _check_truth(x_true)
    C = count(n_cycles, "n_cycles")
    sigma_b = positive(sigma_b, "sigma_b")
    sigma_o = positive(sigma_o, "sigma_o")
    rng = generator(rng)
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    last = {}

    def draw(c: int) -> np.ndarray:
        last["y"], last["which"] = observe(x_true, pattern, sigma_o, rng, phase=c)
        return _as_masked(last["y"], last["which"])

    it = cycling.origen(draw, C, np.full(2, sigma_o), sigma_b**2 * np.eye(2),
                        x0_b=np.zeros(2) if x0_b is None else np.asarray(x0_b, dtype=float),
                        covariance_update=covariance_update)
    rmse = np.sqrt(np.mean((it.x_a - x_true) ** 2, axis=(1, 2)))
    return Reconstruction(x_a=it.x_a, rmse=rmse, sigma_a=it.sigma_a, y=last["y"], which=last["which"], B=it.B)
