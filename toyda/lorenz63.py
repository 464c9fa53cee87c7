"""Lorenz-63: the model, twin observations, 3D-Var cycling and the ORIGEN reconstruction.

    dx/dt = σ (y − x),   dy/dt = x (ρ − z) − y,   dz/dt = x y − β z,   (σ, ρ, β) = (10, 28, 8/3).

The tendency is kept apart from the time stepper (:func:`toyda.integrate.rk4_step`).

* :func:`assimilate` — a general sequential 3D-Var / extended-Kalman cycle over observation
  arrays with a NaN mask (``y (T, 3)``, NaN = not observed), with the persistence or the
  Lorenz-63 model as forecast; works on a student's own data (the loop is
  :func:`toyda.cycling.sequential`, shared with the oscillator).
* :func:`origen_reconstruction` — ORIGEN on Lorenz-63: random observed subsets
  (x, y, z, xy, xz, yz), background ``x^b ← x^a`` of the previous cycle, ``B ← P^a``
  (:func:`toyda.cycling.origen`).
* :func:`var3d_twin` — the standard twin experiment of Sakov et al. (2012) as benchmarked in
  DAPPER (``dt = 0.01``, all of x, y, z observed every 25 steps with ``R = 2 I``, static
  ``B = 0.1 ×`` climatological covariance), reference time-mean analysis RMSE ≈ 1.04.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toyda import cycling, var3d
from toyda.checks import count, generator, positive, sigma_vector
from toyda.integrate import integrate, rk4_step

SUBSETS = ("x", "y", "z", "xy", "xz", "yz")
"""The observed subsets of the lecture's ORIGEN demo (``"xyz"`` is also accepted)."""

X0 = np.array([1.509, -1.531, 25.46])
"""A point on (near) the attractor, DAPPER's ``Lorenz63.x0``."""


@dataclass(frozen=True)
class Lorenz63Config:
    """Lecture defaults for the Lorenz-63 ORIGEN demo."""

    n_steps: int = 500
    """Time steps of the reconstructed trajectory (``T = n_steps + 1`` states)."""
    dt: float = 0.01
    """Model time step (Lorenz time units)."""
    n_cycles: int = 20
    """ORIGEN cycles ``C`` (cycle 0 is the persistence 3D-Var cycle)."""
    sigma_o: float = 1.0
    """Observation-error std per observed component (``R = σ_o² I``)."""
    sigma_b: float = 2.0
    """Background-error std of the persistence cycle and of ORIGEN's first ``B = σ_b² I``
    (about the actual error of the persistence cycle with ``σ_o = 1``, so ``B`` is consistent)."""


@dataclass(frozen=True)
class TwinConfig:
    """Defaults of the Sakov (2012) / DAPPER 3D-Var twin experiment."""

    n_cycles: int = 1000
    """Number of analysis cycles (observation times)."""
    dt: float = 0.01
    """Model time step."""
    obs_every: int = 25
    """Model steps between observations (``Δt_obs = 0.25``)."""
    sigma_o: float = float(np.sqrt(2.0))
    """Observation-error std (``R = 2 I``)."""
    xB: float = 0.1
    """Scale of the climatological covariance in the static ``B`` (DAPPER's ``Var3D(xB=0.1)``)."""
    burn_in_time: float = 16.0
    """Time (Lorenz units) excluded from the time-mean RMSE."""
    sigma_x0: float = float(np.sqrt(2.0))
    """Std of the initial truth around ``X0`` (the filter starts from ``X0``)."""


DEFAULTS = Lorenz63Config()
TWIN = TwinConfig()


@dataclass(frozen=True)
class Assimilation:
    """Sequential 3D-Var / Kalman cycle over a NaN-masked observation array."""

    x_b: np.ndarray
    """Backgrounds (forecasts), shape ``(T, 3)``."""
    x_a: np.ndarray
    """Analyses (equal to ``x_b`` where nothing is observed), shape ``(T, 3)``."""
    B: np.ndarray
    """Background covariance used at each step, shape ``(T, 3, 3)``."""
    A: np.ndarray
    """Analysis covariance ``(I − K H) B`` at each step, shape ``(T, 3, 3)``."""
    n_obs: np.ndarray
    """Number of observed components at each step, shape ``(T,)``."""


@dataclass(frozen=True)
class Reconstruction:
    """ORIGEN reconstruction of a Lorenz-63 trajectory over cycles."""

    x_a: np.ndarray
    """Reconstructed trajectory of every cycle, shape ``(C, T, 3)``."""
    rmse: np.ndarray | None
    """RMSE against the truth per cycle, shape ``(C,)``; ``None`` without a truth."""
    increment: np.ndarray
    """RMS change of the reconstruction from the previous cycle (a convergence check that needs
    no truth), shape ``(C,)``; cycle 0 holds the RMS increment ``x^a − x^b`` of its cycle."""
    sigma_a: np.ndarray
    """The filter's own error estimate per cycle, ``sqrt(mean_k tr(A_k)/3)``, shape ``(C,)``."""
    y: np.ndarray
    """Observations of the last cycle (NaN = not observed), shape ``(T, 3)``."""
    B: np.ndarray
    """Background covariance per time after the last cycle, shape ``(T, 3, 3)``."""


@dataclass(frozen=True)
class Twin:
    """Result of the 3D-Var twin experiment."""

    x_true: np.ndarray
    """Truth, shape ``(T, 3)``, ``T = n_cycles · obs_every + 1``."""
    x_a: np.ndarray
    """Analysis trajectory (forecast between observations), shape ``(T, 3)``."""
    y: np.ndarray
    """Observations, NaN where not observed, shape ``(T, 3)``."""
    obs_index: np.ndarray
    """Time indices of the analyses, shape ``(n_cycles,)``."""
    rmse_a: np.ndarray
    """Analysis RMSE at each observation time, shape ``(n_cycles,)``."""
    rmse_b: np.ndarray
    """Forecast (background) RMSE at each observation time, shape ``(n_cycles,)``."""
    rmse_mean: np.ndarray
    """Time-mean analysis RMSE after the burn-in (0-d array)."""
    B: np.ndarray
    """The static background covariance used, shape ``(3, 3)``."""


# ----------------------------------------------------------------------------- validation


def _check_state(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {x.shape}")
    return x


def _sigma_vector(sigma_o, name: str = "sigma_o") -> np.ndarray:
    return sigma_vector(sigma_o, 3, name)


# ----------------------------------------------------------------------------- the model


def tendency(x: np.ndarray, t: float = 0.0, sigma: float = 10.0, rho: float = 28.0,
             beta: float = 8.0 / 3.0) -> np.ndarray:
    """Lorenz-63 tendency ``f(x) = [σ(y − x), x(ρ − z) − y, xy − βz]``.

    Parameters
    ----------
    x : ndarray, shape ``(..., 3)``
        State(s), e.g. ``(3,)`` or an ensemble ``(N, 3)``.
    t : float
        Time (unused: the system is autonomous; kept for the stepper's signature).
    sigma, rho, beta : float
        Parameters (Lorenz's chaotic values by default).

    Returns
    -------
    ndarray, shape ``(..., 3)``
    """
    x = _check_state(x, "x")
    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([sigma * (Y - X), X * (rho - Z) - Y, X * Y - beta * Z], axis=-1)


def tangent_linear(x: np.ndarray, sigma: float = 10.0, rho: float = 28.0,
                   beta: float = 8.0 / 3.0) -> np.ndarray:
    """Jacobian of the tendency, ``∂f/∂x = [[−σ, σ, 0], [ρ − z, −1, −x], [y, x, −β]]``.

    Parameters
    ----------
    x : ndarray, shape ``(..., 3)``
        Linearisation state(s).
    sigma, rho, beta : float
        Parameters.

    Returns
    -------
    ndarray, shape ``(..., 3, 3)``
    """
    x = _check_state(x, "x")
    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    J = np.zeros((*x.shape[:-1], 3, 3))
    J[..., 0, 0], J[..., 0, 1] = -sigma, sigma
    J[..., 1, 0], J[..., 1, 1], J[..., 1, 2] = rho - Z, -1.0, -X
    J[..., 2, 0], J[..., 2, 1], J[..., 2, 2] = Y, X, -beta
    return J


def tendency_torch(x, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0):
    """The same tendency on a torch tensor ``(..., 3)`` (for autograd)."""
    import torch  # noqa: PLC0415

    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    return torch.stack([sigma * (Y - X), X * (rho - Z) - Y, X * Y - beta * Z], dim=-1)


def _tendency_with_tlm(P: np.ndarray, t: float) -> np.ndarray:
    """Tendency of the packed array ``P = [x | M]`` (``(..., 3, 4)``): ``[f(x) | J(x) M]``."""
    x, M = P[..., 0], P[..., 1:]
    return np.concatenate([tendency(x)[..., None], tangent_linear(x) @ M], axis=-1)


def step(x: np.ndarray, dt: float = DEFAULTS.dt, t: float = 0.0) -> np.ndarray:
    """One RK4 step of Lorenz-63, ``x_{k+1} = M(x_k)``; states ``(..., 3)``."""
    return rk4_step(tendency, _check_state(x, "x"), t, dt)


def step_with_tlm(x: np.ndarray, dt: float = DEFAULTS.dt) -> tuple[np.ndarray, np.ndarray]:
    """One RK4 step and its tangent-linear propagator ``M = ∂x_{k+1}/∂x_k``.

    The state and the TLM ``dM/dt = J(x) M``, ``M(0) = I``, are stepped together with RK4.

    Returns
    -------
    x_next : ndarray, shape ``(..., 3)``
    M : ndarray, shape ``(..., 3, 3)``
    """
    x = _check_state(x, "x")
    P = np.concatenate([x[..., None], np.broadcast_to(np.eye(3), (*x.shape[:-1], 3, 3))], axis=-1)
    P = rk4_step(_tendency_with_tlm, P, 0.0, dt)
    return P[..., 0], P[..., 1:]


def simulate(x0: np.ndarray = X0, n_steps: int = DEFAULTS.n_steps,
             dt: float = DEFAULTS.dt) -> np.ndarray:
    """Integrate Lorenz-63 with RK4 (:func:`toyda.integrate.integrate`).

    Parameters
    ----------
    x0 : ndarray, shape ``(3,)`` or ``(N, 3)``
        Initial state or ensemble.
    n_steps : int
        Number of steps (``>= 0``).
    dt : float
        Time step (``> 0``).

    Returns
    -------
    ndarray, shape ``(n_steps + 1, 3)`` or ``(n_steps + 1, N, 3)``
    """
    x0 = _check_state(x0, "x0")
    if x0.ndim > 2:
        raise ValueError(f"x0 must have shape (3,) or (N, 3), got {x0.shape}")
    n_steps = count(n_steps, "n_steps", minimum=0)
    dt = positive(dt, "dt")
    return integrate(tendency, x0, 0.0, dt, n_steps)


# ----------------------------------------------------------------------------- observations


def _subset_mask(subset: str) -> np.ndarray:
    if subset not in SUBSETS + ("xyz",):
        raise ValueError(f"subset must be one of {SUBSETS + ('xyz',)}, got {subset!r}")
    return np.array([c in subset for c in "xyz"])


def observation_operator(subset: str) -> np.ndarray:
    """Linear operator that picks the components in ``subset`` (rows of the identity).

    Parameters
    ----------
    subset : {"x", "y", "z", "xy", "xz", "yz", "xyz"}

    Returns
    -------
    ndarray, shape ``(p, 3)``, ``p = len(subset)``
        E.g. ``"xz"`` gives ``[[1, 0, 0], [0, 0, 1]]``.
    """
    return np.eye(3)[_subset_mask(subset)]


def twin_observations(x_true: np.ndarray, sigma_o: float = DEFAULTS.sigma_o,
                      rng: np.random.Generator | None = None,
                      subsets: tuple[str, ...] = SUBSETS, every: int = 1) -> np.ndarray:
    """Synthetic observations of random subsets: ``y_k = H_k x_k + ε_k``, ``ε ~ N(0, σ_o² I)``.

    At every ``every``-th time (``k = 0, every, 2·every, …``) one subset is drawn uniformly from
    ``subsets``; its components are observed with noise, the others are NaN. Other times are
    all NaN.

    Parameters
    ----------
    x_true : ndarray, shape ``(T, 3)``
        Truth.
    sigma_o : float or ndarray ``(3,)``
        Observation-error std (``> 0``).
    rng : numpy.random.Generator
        Source of the subsets and the noise.
    subsets : tuple of str
        Candidate subsets, from ``SUBSETS`` (or ``"xyz"``).
    every : int
        Observe every ``every`` steps (``>= 1``).

    Returns
    -------
    ndarray, shape ``(T, 3)``
        Observations with NaN where not observed.
    """
    x_true = _check_state(x_true, "x_true")
    if x_true.ndim != 2:
        raise ValueError(f"x_true must have shape (T, 3), got {x_true.shape}")
    s = _sigma_vector(sigma_o)
    rng = generator(rng)
    every = count(every, "every")
    if isinstance(subsets, str) or len(subsets) == 0:
        raise ValueError(f"subsets must be a non-empty tuple of names from {SUBSETS}, got {subsets!r}")
    table = np.stack([_subset_mask(name) for name in subsets])          # (S, 3)
    T = x_true.shape[0]
    mask = np.zeros((T, 3), dtype=bool)
    obs_t = np.arange(0, T, every)
    mask[obs_t] = table[rng.integers(0, len(subsets), size=obs_t.size)]
    y = x_true + s * rng.standard_normal((T, 3))
    return np.where(mask, y, np.nan)


def _check_obs(y) -> np.ndarray:
    return cycling.check_observations(y, 3)


# ----------------------------------------------------------------------------- assimilation


def assimilate(y: np.ndarray, sigma_o: float, x0_b: np.ndarray, B0: np.ndarray,
               model: str = "persistence", dt: float = DEFAULTS.dt,
               covariance_update: bool = False, Q: np.ndarray | None = None) -> Assimilation:
    """Sequential 3D-Var cycle over observations with a NaN mask (your own data welcome).

    For ``k = 0, …, T−1``: analysis of the observed components of ``y_k`` (skipped where the row
    is all NaN), ``x_k^a = x_k^b + K_k (y_k − H_k x_k^b)``, ``K_k = B_k H_kᵀ (H_k B_k H_kᵀ + R)⁻¹``;
    forecast ``x_{k+1}^b = M(x_k^a)`` with ``M`` the identity (``"persistence"``) or one RK4 step
    of Lorenz-63 (``"lorenz63"``). ``B_k = B0`` (static 3D-Var) or, with
    ``covariance_update``, the extended-Kalman update ``A_k = (I − K_k H_k) B_k`` (computed in
    Joseph form, :func:`toyda.var3d.kalman_update`, so that it stays symmetric positive
    semi-definite over any number of cycles), ``B_{k+1} = M_k A_k M_kᵀ + Q`` (``M_k`` the
    tangent-linear propagator; ``I`` for persistence).

    Parameters
    ----------
    y : ndarray, shape ``(T, 3)``
        Observations of ``x, y, z``; NaN = not observed; an all-NaN row = no observation.
    sigma_o : float or ndarray ``(3,)``
        Observation-error std (``R = diag(σ_o²)`` on the observed components).
    x0_b : ndarray, shape ``(3,)``
        First background.
    B0 : ndarray, shape ``(3, 3)``
        (Initial) background-error covariance, SPD.
    model : {"persistence", "lorenz63"}
        Forecast model between steps.
    dt : float
        Time step of ``y`` (for ``"lorenz63"``).
    covariance_update : bool
        Kalman-type covariance cycling (else static ``B0``).
    Q : ndarray, shape ``(3, 3)``, optional
        Model-error covariance added per step with ``covariance_update`` (default 0).

    Returns
    -------
    Assimilation
    """
    y = _check_obs(y)
    s = _sigma_vector(sigma_o)
    x = np.asarray(x0_b, dtype=float)
    if x.shape != (3,) or not np.all(np.isfinite(x)):
        raise ValueError(f"x0_b must be a finite array of shape (3,), got {x0_b!r}")
    B0 = var3d.check_spd(B0, "B0")
    if B0.shape != (3, 3):
        raise ValueError(f"B0 must have shape (3, 3), got {B0.shape}")
    if model not in ("persistence", "lorenz63"):
        raise ValueError(f"model must be 'persistence' or 'lorenz63', got {model!r}")
    dt = positive(dt, "dt")
    Qm = np.zeros((3, 3)) if Q is None else np.asarray(Q, dtype=float)
    if Qm.shape != (3, 3) or not np.allclose(Qm, Qm.T) or np.linalg.eigvalsh(Qm).min() < 0:
        raise ValueError(f"Q must be a symmetric positive semi-definite (3, 3) matrix, got {Q!r}")


    def forecast(x: np.ndarray, k: int, with_tlm: bool):
        if with_tlm:
            return step_with_tlm(x, dt)
        return rk4_step(tendency, x, k * dt, dt), None

    seq = cycling.sequential(y, s, x, B0, forecast=forecast if model == "lorenz63" else None,
                             covariance_update=covariance_update, Q=Qm)
    return Assimilation(x_b=seq.x_b, x_a=seq.x_a, B=seq.B, A=seq.A, n_obs=seq.n_obs)


# ----------------------------------------------------------------------------- ORIGEN


def origen_reconstruction(x_true: np.ndarray | None = None, n_cycles: int = DEFAULTS.n_cycles,
                          sigma_o: float = DEFAULTS.sigma_o,
                          rng: np.random.Generator | None = None, *,
                          y: np.ndarray | None = None, sigma_b: float = DEFAULTS.sigma_b,
                          subsets: tuple[str, ...] = SUBSETS, covariance_update: bool = True,
                          x0_b: np.ndarray | None = None) -> Reconstruction:
    """ORIGEN on Lorenz-63: iterative reconstruction of a trajectory from partial observations.

    Cycle 0 is the sequential 3D-Var cycle with the **persistence** model and ``B = σ_b² I``
    (:func:`assimilate`): ORIGEN starts from a baseline model and does not assume that the
    Lorenz-63 equations are known (learning them is the next step, the emulator). Every later
    cycle ``c`` analyses each time index with the previous reconstruction as background,
    ``x_k^{b,(c)} = x_k^{a,(c−1)}``, one batched analysis over all ``T`` times, and with
    ``covariance_update`` carries ``B_k^{(c+1)} = P_k^{a,(c)} = (I − K_k H_k) B_k^{(c)}``
    (``B_k^{(1)} = σ_b² I``).

    Observations: with ``x_true`` (and no ``y``) a new random subset and new noise are drawn
    at every time of every cycle (:func:`twin_observations`), so information accumulates and
    the RMSE decreases like ``1/√cycles``. With a user array ``y`` the same observations are
    used in every cycle; with the covariance update this counts them again each cycle, so the
    reconstruction converges to the observations themselves (not to the truth) where a
    component is observed, and unobserved components keep their cycle-0 values.

    Parameters
    ----------
    x_true : ndarray, shape ``(T, 3)``, optional
        Truth: source of the twin observations and reference for the RMSE.
    n_cycles : int
        Number of cycles ``C >= 1`` (including cycle 0).
    sigma_o : float or ndarray ``(3,)``
        Observation-error std.
    rng : numpy.random.Generator
        Source of the subsets and noise (needed when ``y`` is not given).
    y : ndarray, shape ``(T, 3)``, optional
        Your own observations with NaN where not observed (used in every cycle).
    sigma_b : float
        Background-error std of cycle 0 and of the first ``B`` (``> 0``).
    subsets : tuple of str
        Candidate observed subsets for twin observations.
    covariance_update : bool
        ``B_k ← P^a_k`` across cycles (else fixed ``B = σ_b² I``).
    x0_b : ndarray, shape ``(3,)``, optional
        First background of cycle 0; default the mean of the observations per component.

    Returns
    -------
    Reconstruction
    """
    if x_true is None and y is None:
        raise ValueError("give x_true (twin observations drawn each cycle) or y (your own "
                         "observations, NaN = missing), got neither")
    C = count(n_cycles, "n_cycles")
    s = _sigma_vector(sigma_o)
    sigma_b = positive(sigma_b, "sigma_b")
    if x_true is not None:
        x_true = _check_state(x_true, "x_true")
        if x_true.ndim != 2:
            raise ValueError(f"x_true must have shape (T, 3), got {x_true.shape}")
    if y is not None:
        y = _check_obs(y)
        if x_true is not None and y.shape != x_true.shape:
            raise ValueError(f"y must have the shape of x_true {x_true.shape}, got {y.shape}")
        y_fixed = y
    else:
        rng = generator(rng)

    def draw(c: int) -> np.ndarray:
        return y_fixed if y is not None else twin_observations(x_true, s, rng, subsets)

    it = cycling.origen(draw, C, s, sigma_b**2 * np.eye(3), x0_b=x0_b, covariance_update=covariance_update)
    rmse = None if x_true is None else np.sqrt(np.mean((it.x_a - x_true) ** 2, axis=(1, 2)))
    return Reconstruction(x_a=it.x_a, rmse=rmse, increment=it.increment, sigma_a=it.sigma_a, y=it.y, B=it.B)


# ----------------------------------------------------------------------------- twin experiment


def var3d_twin(n_cycles: int = TWIN.n_cycles, dt: float = TWIN.dt,
               obs_every: int = TWIN.obs_every, sigma_o: float = TWIN.sigma_o,
               B: np.ndarray | None = None, xB: float = TWIN.xB,
               burn_in_time: float = TWIN.burn_in_time, seed: int = 0) -> Twin:
    """3D-Var twin experiment on Lorenz-63 (Sakov et al. 2012 setup, as benchmarked in DAPPER).

    Truth: RK4 Lorenz-63 from ``X0 + N(0, 2 I)``. Observations of all of x, y, z every
    ``obs_every`` steps (first at ``k = obs_every``) with ``R = σ_o² I = 2 I``. The filter starts
    from ``X0`` and forecasts with the (perfect) Lorenz-63 model between analyses; each analysis
    is a 3D-Var step with a static ``B``. Score: analysis RMSE at each observation time
    (``sqrt(mean over x, y, z of squared error)``), averaged over the times after
    ``burn_in_time``. DAPPER's ``Var3D(xB=0.1)`` reaches ≈ 1.04 on this setup.

    How ``B`` is chosen (when not given): as DAPPER's ``Var3D``, ``B = xB · cov(x_true)``, the
    climatological covariance of this run's truth scaled by ``xB = 0.1`` (the one tuning
    parameter; a forecast error over 0.25 time units is about a tenth of the climate variance).

    Parameters
    ----------
    n_cycles : int
        Analysis cycles (``>= 1``).
    dt : float
        Model time step.
    obs_every : int
        Model steps between observations.
    sigma_o : float
        Observation-error std.
    B : ndarray, shape ``(3, 3)``, optional
        Static background covariance (SPD); default ``xB · cov(x_true)``.
    xB : float
        Scale of the climatological covariance when ``B`` is not given.
    burn_in_time : float
        Time units excluded from the mean (``>= 0``).
    seed : int
        Seed of the initial truth and the observation noise.

    Returns
    -------
    Twin
    """
    n_cycles = count(n_cycles, "n_cycles")
    obs_every = count(obs_every, "obs_every")
    dt = positive(dt, "dt")
    sigma_o = positive(sigma_o, "sigma_o")
    xB = positive(xB, "xB")
    if not np.isfinite(burn_in_time) or burn_in_time < 0:
        raise ValueError(f"burn_in_time must be a finite number >= 0, got {burn_in_time!r}")
    rng = np.random.default_rng(seed)
    T = n_cycles * obs_every + 1
    x_true = simulate(X0 + TWIN.sigma_x0 * rng.standard_normal(3), T - 1, dt)
    obs_index = np.arange(1, n_cycles + 1) * obs_every
    y = np.full((T, 3), np.nan)
    y[obs_index] = x_true[obs_index] + sigma_o * rng.standard_normal((n_cycles, 3))
    B = xB * np.cov(x_true.T) if B is None else var3d.check_spd(B, "B")
    if B.shape != (3, 3):
        raise ValueError(f"B must have shape (3, 3), got {B.shape}")
    run = assimilate(y, sigma_o, X0, B, model="lorenz63", dt=dt)
    rmse_a = np.sqrt(np.mean((run.x_a[obs_index] - x_true[obs_index]) ** 2, axis=-1))
    rmse_b = np.sqrt(np.mean((run.x_b[obs_index] - x_true[obs_index]) ** 2, axis=-1))
    after = obs_index * dt > burn_in_time
    if not np.any(after):
        raise ValueError(f"burn_in_time must be shorter than the run ({n_cycles * obs_every * dt:g} "
                         f"time units), got {burn_in_time!r}")
    return Twin(x_true=x_true, x_a=run.x_a, y=y, obs_index=obs_index, rmse_a=rmse_a,
                rmse_b=rmse_b, rmse_mean=np.asarray(rmse_a[after].mean()), B=B)
