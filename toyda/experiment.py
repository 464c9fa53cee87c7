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
    params: tuple[tuple[str, float], ...] = ()
    x0_variance: float = 1.0
    """variance of the initial error around the true x0 (DAPPER's X0 = GaussRV(C=…, mu=x0))"""
    has_distance: bool = False
    """variables sit on a ring, so localisation by distance applies (Lorenz-96)"""

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
        for _ in range(int(n_steps)):
            x = self.step(x)
        return x

    def forecast_tl(self, x: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The state after ``n_steps`` and the product of the step Jacobians (the TLM of the forecast)."""
        M = np.eye(self.n)
        for _ in range(int(n_steps)):
            x, Mk = self.step_tl(x)
            M = Mk @ M
        return x, M

    def climatology(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(n,)`` and covariance ``(n, n)`` of a long free run (computed once, cached)."""
        return _climatology(self.name, self.dt, self.params)


@lru_cache(maxsize=16)
def _climatology(name: str, dt: float, params: tuple) -> tuple[np.ndarray, np.ndarray]:
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
    return X.mean(0), np.cov(X.T)


def lorenz63_model(dt: float = 0.01, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> Model:
    return Model("lorenz63", 3, dt,
                 lambda x: l63.tendency(x, sigma=sigma, rho=rho, beta=beta),
                 lambda x: l63.tangent_linear(x, sigma=sigma, rho=rho, beta=beta),
                 lambda x: _l63_torch(x, sigma, rho, beta),
                 np.array([1.509, -1.531, 25.46]), (("sigma", sigma), ("rho", rho), ("beta", beta)),
                 x0_variance=2.0)


def _l63_torch(x, sigma, rho, beta):
    import torch  # noqa: PLC0415

    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    return torch.stack([sigma * (Y - X), X * (rho - Z) - Y, X * Y - beta * Z], dim=-1)


def lorenz96_model(n: int = l96.N_DEFAULT, F: float = l96.F_DEFAULT, dt: float = 0.05) -> Model:
    x0 = F * np.ones(n)
    x0[0] += 0.01
    return Model("lorenz96", n, dt, lambda x: l96.tendency(x, F), l96.jacobian,
                 lambda x: l96.tendency_torch(x, F), x0, (("n", n), ("F", F)), x0_variance=0.001,
                 has_distance=True)


def get_model(name: str, dt: float | None = None, **params) -> Model:
    """A model by name (``lorenz63`` or ``lorenz96``) with its default dt unless given."""
    if name == "lorenz63":
        return lorenz63_model(**({"dt": dt} if dt else {}), **params)
    if name == "lorenz96":
        return lorenz96_model(**({"dt": dt} if dt else {}), **{k: (int(v) if k == "n" else v) for k, v in params.items()})
    raise ValueError(f"unknown model {name!r}; the models are: {', '.join(MODELS)}")


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
        if self.obs_every < 1 or self.n_obs < 1:
            raise ValueError(f"obs_every and n_obs must be >= 1, got {self.obs_every} and {self.n_obs}")
        if not self.sigma_o > 0:
            raise ValueError(f"sigma_o must be > 0, got {self.sigma_o}")
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
