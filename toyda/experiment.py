"""One experiment description shared by every DA method (in the spirit of DAPPER's HiddenMarkovModel).

- :class:`Model`: a dynamical model (Lorenz-63, Lorenz-96) with its RK4 step vectorised over an
  ensemble, the tangent-linear of that step, a torch twin for autograd, and its climatology.
- :class:`Experiment`: model, observation interval, observed components, ``R = σ_o² I``, the
  number of observation times, burn-in and seed.
- :class:`Observations`: times, values (NaN = not observed), model steps between them and the truth
  when it is known; made by :func:`twin` or read from the student's files (``tools.dafiles``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from toyda import _modelkernels as kern
from toyda import lorenz63 as l63
from toyda import lorenz96 as l96

MODELS = ("lorenz63", "lorenz96")


def rk4(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dt: float) -> np.ndarray:
    """One RK4 step of an autonomous tendency ``f`` (arrays ``(..., n)``, numpy or torch)."""
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


def rk4_tl(f: Callable, jac: Callable, x: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """The RK4 step and its Jacobian ``M = ∂x_{k+1}/∂x_k`` (the tangent-linear of the discrete step,
    differentiated stage by stage, so that M δx agrees with finite differences to O(ε²))."""
    n = x.shape[-1]
    I = np.eye(n)
    k1 = f(x)
    d1 = jac(x)
    x2 = x + 0.5 * dt * k1
    k2 = f(x2)
    d2 = jac(x2) @ (I + 0.5 * dt * d1)
    x3 = x + 0.5 * dt * k2
    k3 = f(x3)
    d3 = jac(x3) @ (I + 0.5 * dt * d2)
    x4 = x + dt * k3
    k4 = f(x4)
    d4 = jac(x4) @ (I + dt * d3)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), I + dt / 6 * (d1 + 2 * d2 + 2 * d3 + d4)


@dataclass(frozen=True)
class Model:
    """A dynamical model every DA method can use (arrays ``(..., n)``: members as leading axes)."""

    name: str
    n: int
    dt: float
    tendency: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    jacobian: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    tendency_torch: Callable = field(repr=False)
    x0: np.ndarray = field(repr=False)
    params: dict = field(default_factory=dict)
    """the model's parameters: {"sigma", "rho", "beta"} or {"n", "F"}"""
    x0_variance: float = 1.0
    """variance of the initial error around the true x0 (DAPPER's X0 = GaussRV(C=…, mu=x0))"""
    has_distance: bool = False
    """variables sit on a ring, so localisation by distance applies (Lorenz-96)"""
    kernel: Callable[[np.ndarray, int], np.ndarray] | None = field(default=None, repr=False, compare=False)
    """compiled ``(X (M, n), n_steps) -> X`` doing what :meth:`step` does ``n_steps`` times"""
    kernel_tl: Callable | None = field(default=None, repr=False, compare=False)
    """compiled ``(x (n,), P (n, c), n_steps) -> (x_n, M P)``"""

    def step(self, x: np.ndarray) -> np.ndarray:
        """One RK4 step of ``dt``, ``(..., n) -> (..., n)``."""
        return rk4(self.tendency, x, self.dt)

    def step_tl(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(step(x), M)`` with ``M`` the Jacobian of the RK4 step at ``x (n,)``."""
        return rk4_tl(self.tendency, self.jacobian, x, self.dt)

    def step_torch(self, x):
        """The RK4 step on a torch tensor (agrees with :meth:`step` to round-off)."""
        return rk4(self.tendency_torch, x, self.dt)

    def forecast(self, x: np.ndarray, n_steps: int) -> np.ndarray:
        """``x (..., n)`` after ``n_steps`` RK4 steps (the compiled kernel when there is one)."""
        n_steps = int(n_steps)
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        if self.kernel is not None:
            x = np.asarray(x, dtype=float)
            return self.kernel(np.ascontiguousarray(x.reshape(-1, self.n)), n_steps).reshape(x.shape)
        for _ in range(n_steps):
            x = self.step(x)
        return x

    def forecast_tl(self, x: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The state after ``n_steps`` from ``x (n,)`` and the TLM of that forecast ``(n, n)``, the
        product of the RK4 step Jacobians."""
        n_steps = int(n_steps)
        if self.kernel_tl is not None:
            return self.kernel_tl(np.asarray(x, dtype=float), np.eye(self.n), n_steps)
        M = np.eye(self.n)
        for _ in range(n_steps):
            x, Mk = self.step_tl(x)
            M = Mk @ M
        return x, M

    def climatology(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(n,)`` and covariance ``(n, n)`` of a long free run (computed once per
        (name, dt, params), cached; the arrays are read-only)."""
        return _climatology(self.name, self.dt, tuple(sorted(self.params.items())))


@lru_cache(maxsize=16)
def _climatology(name: str, dt: float, params: tuple) -> tuple[np.ndarray, np.ndarray]:
    """20 runs from x0, 10 time units of spin-up, then 250 samples each 0.1 time units apart."""
    m = get_model(name, dt, **dict(params))
    rng = np.random.default_rng(1234)
    E = m.x0 + rng.standard_normal((20, m.n))           # 20 independent runs, one array
    every = max(1, int(round(0.1 / dt)))
    E = m.forecast(E, int(round(10 / dt)))              # onto the attractor
    samples = []
    for _ in range(250):
        E = m.forecast(E, every)
        samples.append(E.copy())
    X = np.concatenate(samples)
    mu, C = X.mean(0), np.cov(X.T)
    mu.flags.writeable = C.flags.writeable = False
    return mu, C


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def lorenz63_model(dt: float = 0.01, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> Model:
    """Lorenz-63 (:mod:`toyda.lorenz63`) with RK4 steps of ``dt``; x0 and the initial-error
    variance 2 of DAPPER's sakov2012 setup (Sakov et al. 2012)."""
    dt = _positive("dt", dt)
    sigma, rho, beta = (float(v) for v in (sigma, rho, beta))
    return Model("lorenz63", 3, dt,
                 lambda x: l63.tendency(x, sigma=sigma, rho=rho, beta=beta),
                 lambda x: l63.tangent_linear(x, sigma=sigma, rho=rho, beta=beta),
                 lambda x: l63.tendency_torch(x, sigma, rho, beta),
                 np.array([1.509, -1.531, 25.46]), {"sigma": sigma, "rho": rho, "beta": beta},
                 x0_variance=2.0,
                 kernel=lambda X, k: kern.l63_forecast(X, k, dt, sigma, rho, beta),
                 kernel_tl=lambda x, P, k: kern.l63_forecast_tl(x, P, k, dt, sigma, rho, beta))


def lorenz96_model(n: int = l96.N_DEFAULT, F: float = l96.F_DEFAULT, dt: float = 0.05) -> Model:
    """Lorenz-96 (:mod:`toyda.lorenz96`) on ``n`` variables; x0 = F with a nudge at x_0 and the
    initial-error variance 0.001 of DAPPER's sakov2008 setup (Sakov & Oke 2008)."""
    dt, F = _positive("dt", dt), float(F)
    if int(n) != n or n < 4:
        raise ValueError(f"n (the number of Lorenz-96 variables) must be an integer >= 4, got {n!r}")
    n = int(n)
    x0 = F * np.ones(n)
    x0[0] += 0.01
    return Model("lorenz96", n, dt, lambda x: l96.tendency(x, F), l96.jacobian,
                 lambda x: l96.tendency_torch(x, F), x0, {"n": n, "F": F}, x0_variance=0.001,
                 has_distance=True,
                 kernel=lambda X, k: kern.l96_forecast(X, k, dt, F),
                 kernel_tl=lambda x, P, k: kern.l96_forecast_tl(x, P, k, dt, F))


_PARAMS = {"lorenz63": ("sigma", "rho", "beta"), "lorenz96": ("n", "F")}


def get_model(name: str, dt: float | None = None, **params) -> Model:
    """A model by name (``lorenz63`` or ``lorenz96``) with its default dt unless given.

    Raises
    ------
    ValueError
        For an unknown name or parameter, naming what is allowed.
    """
    if name not in _PARAMS:
        raise ValueError(f"unknown model {name!r}; the models are: {', '.join(MODELS)}")
    extra = set(params) - set(_PARAMS[name])
    if extra:
        raise ValueError(f"{name} takes the parameters {', '.join(_PARAMS[name])}, not {', '.join(sorted(extra))}")
    build = lorenz63_model if name == "lorenz63" else lorenz96_model
    return build(**({} if dt is None else {"dt": dt}), **params)


@dataclass(frozen=True)
class Experiment:
    """One experiment shared by every method: what is observed, how often, how well, how long."""

    model: Model
    obs_every: int = 1
    """model steps between observation times"""
    observed: str = "all"
    """'all'; Lorenz-63 letters ('x', 'xz'); 'every:k' every k-th variable; 'random:m' m random components per time"""
    sigma_o: float = 1.0
    """observation-error standard deviation: R = σ_o² I"""
    n_obs: int = 1000
    """number of observation times"""
    burn_in: float = 0.0
    """model time units: only analyses at t > burn_in are scored (DAPPER's BurnIn)"""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("obs_every", "n_obs"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (np.isfinite(self.sigma_o) and self.sigma_o > 0):
            raise ValueError(f"sigma_o (observation-error std) must be a finite number > 0, got {self.sigma_o!r}")
        if not (np.isfinite(self.burn_in) and self.burn_in >= 0):
            raise ValueError(f"burn_in (model time units) must be a finite number >= 0, got {self.burn_in!r}")
        self.mask(np.random.default_rng(0), 1)        # checks `observed`

    def mask(self, rng: np.random.Generator, n_times: int | None = None) -> np.ndarray:
        """``(n_times, n)`` booleans, True where a component is observed."""
        n, K = self.model.n, self.n_obs if n_times is None else n_times
        m = np.zeros((K, n), bool)
        o = self.observed.strip().lower()
        if o == "all":
            m[:] = True
        elif o.startswith("every:") and o[6:].isdigit() and int(o[6:]) >= 1:
            m[:, ::int(o[6:])] = True
        elif o.startswith("random:") and o[7:].isdigit() and 1 <= int(o[7:]) <= n:
            k = int(o[7:])
            for i in range(K):
                m[i, rng.choice(n, k, replace=False)] = True
        elif self.model.name == "lorenz63" and o and set(o) <= set("xyz"):
            for c in o:
                m[:, "xyz".index(c)] = True
        else:
            raise ValueError(f"observed={self.observed!r} is not allowed: use 'all', 'every:k', 'random:m'"
                             + (" or letters of 'xyz'" if self.model.name == "lorenz63" else ""))
        return m


@dataclass(frozen=True)
class Observations:
    """Observation times and values (NaN = not observed), the model steps between them, and the truth."""

    t: np.ndarray
    y: np.ndarray
    steps: np.ndarray
    x_true: np.ndarray | None = None
    x0_true: np.ndarray | None = None


def twin(exp: Experiment) -> Observations:
    """A twin experiment: a truth run from the attractor and observations ``y = x + N(0, σ_o²)`` where observed."""
    rng = np.random.default_rng(exp.seed)
    m = exp.model
    x = m.forecast(m.x0 + rng.standard_normal(m.n), int(round(5 / m.dt)))     # a random point on the attractor
    x0 = x.copy()
    xs = np.empty((exp.n_obs, m.n))
    for k in range(exp.n_obs):
        x = m.forecast(x, exp.obs_every)
        xs[k] = x
    y = xs + exp.sigma_o * rng.standard_normal(xs.shape)
    y[~exp.mask(rng)] = np.nan
    t = np.arange(1, exp.n_obs + 1) * exp.obs_every * m.dt
    return Observations(t, y, np.full(exp.n_obs, exp.obs_every), xs, x0)


def scored(obs: Observations, burn_in: float) -> np.ndarray:
    """``(K,)`` booleans: the analyses that count (after the burn-in)."""
    return np.asarray(obs.t) > burn_in
