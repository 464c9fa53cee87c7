"""The learned Lorenz-63 emulator as the forecast model of data assimilation.

:func:`emulated_model` wraps a trained :class:`toyda.emulator.Emulator` (``x(k) ↦ x̂(k+1)``, time
step ``dt_net``) as a :class:`toyda.experiment.Model`, so that every method of :mod:`toyda.da` runs
with the network in place of the RK4 model:

* one model step is one application of the network; a forecast over an observation interval
  ``Δt_obs`` applies it ``Δt_obs / dt_net`` times (:func:`on_emulator_clock` converts the
  observations' step counts and refuses a ``dt_net`` that does not divide ``Δt_obs``);
* the ensemble is advanced in one batched call ``(N, 3) → (N, 3)`` per step;
* the tangent-linear of a forecast is the Jacobian of the composed network,
  ``M = ∂x̂(k+s)/∂x(k)``: in closed form (the chain rule through the MLP's layers, numpy — what
  the ExtKF and 4D-Var use, ~200× faster than autodiff on this machine) and by
  ``torch.func.jacrev``; its action and adjoint by ``torch.func.jvp`` and ``torch.func.vjp``
  (4D-Var's gradient through the network is the adjoint of the network; the tests check all
  of these against each other and against finite differences);
* the network runs in float64 on the CPU (a tiny MLP: the transfers to a GPU would cost more than
  the arithmetic, and float64 keeps the tangent-linear checks at round-off);
* its climatology (3D-Var's static ``B``, the divergence test) is that of a free run of the
  emulator itself, the same recipe as the true model's — nothing here looks at the truth.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import erf

from toyda.emulator import Emulator
from toyda.experiment import Model, Observations

NAME = "lorenz63-emulator"
X0 = np.array([1.509, -1.531, 25.46])
"""the Lorenz-63 reference x0 (DAPPER's sakov2012), where the emulator's free runs start"""


def _unsupported(x):   # the emulator has no tendency: its step is the network
    raise NotImplementedError("the emulator model has no tendency; use step/forecast")


@dataclass(frozen=True)
class EmulatedModel(Model):
    """A :class:`~toyda.experiment.Model` whose step is a trained network (float64, CPU)."""

    net: torch.nn.Module | None = field(default=None, repr=False, compare=False)
    """the emulator's one-step map on ``(..., 3)`` float64 tensors"""
    fine_tuned: bool = False
    """whether the network was fine-tuned with rollout (``rollout_steps > 0``)"""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- the forecast --------------------------------------------------------------------------------
    def _run(self, x: torch.Tensor, n_steps: int) -> torch.Tensor:
        for _ in range(n_steps):
            x = self.net(x)
        return x

    def step(self, x: np.ndarray) -> np.ndarray:
        """One network step ``(..., 3) → (..., 3)``."""
        return self.forecast(x, 1)

    def step_torch(self, x: torch.Tensor) -> torch.Tensor:
        """One network step on a torch tensor (differentiable: autograd gives the adjoint)."""
        return self.net(x.to(torch.float64))

    def forecast(self, x: np.ndarray, n_steps: int) -> np.ndarray:
        """``x (..., 3)`` after ``n_steps`` network steps, all members in one batch per step.

        The same network evaluated with numpy (its weights copied once): a torch call costs
        more in dispatch than this MLP's arithmetic on a 2-core machine; the tests check that
        both agree to round-off."""
        n_steps = int(n_steps)
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        x = np.array(x, dtype=float)
        step = self._numpy()[0]
        for _ in range(n_steps):
            x = step(x)
        return x

    def _numpy(self):
        if "numpy" not in self._cache:
            self._cache["numpy"] = _numpy_net(self.net)
        return self._cache["numpy"]

    # -- tangent-linear and adjoint ------------------------------------------------------------------
    def step_tl(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(step(x), M)`` with ``M`` the network's Jacobian at ``x (3,)``."""
        return self.forecast_tl(x, 1)

    def forecast_tl(self, x: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The state after ``n_steps`` from ``x (3,)`` and the Jacobian ``(3, 3)`` of that forecast,
        the product of the network's step Jacobians (in closed form, numpy; checked against
        :meth:`forecast_tl_torch`)."""
        step_tl = self._numpy()[1]
        x, M = np.array(x, dtype=float), np.eye(self.n)
        for _ in range(int(n_steps)):
            x, J = step_tl(x)
            M = J @ M
        return x, M

    def forecast_tl_torch(self, x: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`forecast_tl` by reverse-mode autodiff through the composed network
        (``torch.func.jacrev``): slower, independent of the closed form."""
        n_steps = int(n_steps)
        fn = lambda z: (lambda out: (out, out.detach()))(self._run(z, n_steps))  # noqa: E731
        M, xn = torch.func.jacrev(fn, has_aux=True)(torch.as_tensor(np.asarray(x, dtype=float)))
        return xn.numpy().copy(), M.numpy().copy()

    def forecast_jvp(self, x: np.ndarray, n_steps: int, dx: np.ndarray) -> np.ndarray:
        """The tangent-linear model applied to ``dx (3,)``: ``M dx`` (forward mode, ``torch.func.jvp``)."""
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=float))  # noqa: E731
        return torch.func.jvp(lambda z: self._run(z, int(n_steps)), (t(x),), (t(dx),))[1].numpy().copy()

    def forecast_vjp(self, x: np.ndarray, n_steps: int, w: np.ndarray) -> np.ndarray:
        """The adjoint model applied to ``w (3,)``: ``Mᵀ w`` (reverse mode, ``torch.func.vjp``)."""
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=float))  # noqa: E731
        _, pullback = torch.func.vjp(lambda z: self._run(z, int(n_steps)), t(x))
        return pullback(t(w))[0].numpy().copy()

    # -- climatology ---------------------------------------------------------------------------------
    def climatology(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(3,)`` and covariance ``(3, 3)`` of a free run of the emulator (20 runs from x0,
        10 time units of spin-up, 250 samples 0.1 apart; computed once per model, read-only). If
        the free run leaves every bound (non-finite), the normalisation statistics of the
        training states (their mean and per-component variance) are used instead."""
        if "clim" not in self._cache:
            rng = np.random.default_rng(1234)
            E = self.x0 + rng.standard_normal((20, self.n))
            every = max(1, int(round(0.1 / self.dt)))
            E = self.forecast(E, int(round(10 / self.dt)))
            samples = []
            for _ in range(250):
                E = self.forecast(E, every)
                samples.append(E)
            X = np.concatenate(samples)
            if np.all(np.isfinite(X)):
                mu, C = X.mean(0), np.cov(X.T)
            else:
                mu = self.net.mean.numpy().astype(float)
                C = np.diag(self.net.std.numpy().astype(float) ** 2)
            mu.flags.writeable = C.flags.writeable = False
            self._cache["clim"] = (mu, C)
        return self._cache["clim"]


_SQRT_HALF = float(np.sqrt(0.5))
_ACTIVATIONS = {  # f and f' in numpy (exact GELU: h Φ(h); Φ' = φ)
    torch.nn.GELU: (lambda h: 0.5 * h * (1.0 + erf(h * _SQRT_HALF)),
                    lambda h: 0.5 * (1.0 + erf(h * _SQRT_HALF)) + h * np.exp(-0.5 * h * h) / np.sqrt(2 * np.pi)),
    torch.nn.Tanh: (np.tanh, lambda h: 1.0 - np.tanh(h) ** 2),
}


def _numpy_net(net: torch.nn.Module):
    """``x ↦ x + δ ⊙ mlp((x − μ) / σ)`` of :class:`toyda.emulator._Net` in numpy (float64), and the
    same step with its Jacobian ``I + diag(δ) W_L D_{L−1} ⋯ D_1 W_1 diag(1/σ)`` (``D`` the
    activations' derivatives at the pre-activations) for one state."""
    layers = []
    for layer in net.mlp:
        if isinstance(layer, torch.nn.Linear):
            layers.append((layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy()))
        elif type(layer) in _ACTIVATIONS and getattr(layer, "approximate", "none") == "none":
            layers.append(_ACTIVATIONS[type(layer)])
        else:
            raise ValueError(f"no numpy form for the layer {layer!r}")
    mean, std, step_std = (getattr(net, k).detach().numpy().astype(float) for k in ("mean", "std", "step_std"))

    def step(x: np.ndarray) -> np.ndarray:
        h = (x - mean) / std
        for W, b in layers:
            h = W(h) if callable(W) else h @ W + b
        return x + step_std * h

    def step_tl(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, J = (x - mean) / std, np.diag(1.0 / std)
        for W, b in layers:
            if callable(W):
                h, J = W(h), b(h)[:, None] * J
            else:
                h, J = h @ W + b, W.T @ J
        return x + step_std * h, np.eye(x.size) + step_std[:, None] * J

    return step, step_tl


def emulated_model(emulator: Emulator, x0_variance: float = 2.0) -> EmulatedModel:
    """The emulator as a DA forecast model (a float64 CPU copy of its network; the emulator is
    left as it is). ``x0`` and ``x0_variance`` are those of the Lorenz-63 reference setup."""
    net = copy.deepcopy(emulator.net).to("cpu", torch.float64).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return EmulatedModel(NAME, 3, float(emulator.dt), _unsupported, _unsupported, _unsupported, X0.copy(),
                         {"emulator_dt": float(emulator.dt), "rollout_steps": int(emulator.rollout_steps)},
                         x0_variance=x0_variance, net=net, fine_tuned=emulator.rollout_steps > 0)


def check_clock(dt_model: float, dt_net: float, steps: int | np.ndarray) -> None:
    """A ValueError naming both numbers unless the network's ``dt_net`` divides every observation
    interval of ``steps`` model steps of ``dt_model``."""
    intervals = np.unique(np.atleast_1d(np.asarray(steps)))
    ratios = intervals * dt_model / dt_net
    off = np.abs(ratios - np.round(ratios)) > 1e-6 * np.maximum(ratios, 1.0)
    if np.any(off | (np.round(ratios) < 1)):
        i = int(np.flatnonzero(off | (np.round(ratios) < 1))[0])
        raise ValueError(f"the emulator's time step dt = {dt_net:g} does not divide the observation interval "
                         f"{intervals[i] * dt_model:g} ({int(intervals[i])} model steps of {dt_model:g}); use an "
                         "emulator trained at a dt that divides it, or another obs_every")


def on_emulator_clock(obs: Observations, dt_model: float, dt_net: float) -> Observations:
    """The same observations with ``steps`` counted in network steps of ``dt_net`` (``obs.steps``
    are model steps of ``dt_model``); refuses a ``dt_net`` that does not divide every interval."""
    check_clock(dt_model, dt_net, obs.steps)
    return dataclasses.replace(obs, steps=np.round(np.asarray(obs.steps) * dt_model / dt_net).astype(np.int64))
