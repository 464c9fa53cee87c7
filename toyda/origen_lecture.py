"""The lecture notebook's ORIGEN on Lorenz-63, as the notebook does it.

* Truth: an adaptive ODE solver (``scipy.integrate.solve_ivp``, RK45) sampled every
  ``dt = 0.1`` for ``0 ≤ t ≤ 20`` from ``(0, 1, 20)``: 201 states.
* Background ``x_b = 0`` at every time; ``B_0`` a 3×3 Gaussian-correlation matrix over the
  component index, ``B_0[i, j] = 4 exp(-(i − j)² / (2 · 0.8²))``.
* Each iteration draws ONE observed subset from {x, y, z, xy, xz, yz} (for all times) and
  fresh noise (``σ_o = 1``); per time the 3D-Var/Kalman analysis, then ``B_k ← P^a_k`` in
  Joseph form ``(I − KH) B (I − KH)ᵀ + K R Kᵀ`` and ``x_b ← x_a``; 20 iterations.
* The emulator: an MLP 3→32 tanh→32 tanh→3 on ``x_a(k) → x_a(k+1)`` (inputs and outputs
  standardised with the reconstruction's mean and std), 10,000 full-batch Adam epochs at
  lr 1e-3, then rollout fine-tuning (4-step rollouts, weight 0.3, lr 1e-4, 2,000 epochs,
  gradient-norm clip 1); forecasts from every 20th start, 20 steps long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from toyda import cycling
from toyda.lorenz63 import tendency

SUBSETS = ("x", "y", "z", "xy", "xz", "yz")


@dataclass(frozen=True)
class LectureOrigenConfig:
    dt: float = 0.1
    t_end: float = 20.0
    x0: tuple[float, float, float] = (0.0, 1.0, 20.0)
    b_variance: float = 4.0
    b_length: float = 0.8
    sigma_o: float = 1.0
    n_iterations: int = 20


def truth(config: LectureOrigenConfig = LectureOrigenConfig()) -> tuple[np.ndarray, np.ndarray]:
    """``(t (T,), x (T, 3))`` by RK45 (rtol 1e-9, atol 1e-9) sampled every ``dt``."""
    t = np.arange(0.0, config.t_end + 0.5 * config.dt, config.dt)
    sol = solve_ivp(lambda tt, x: tendency(x), (0.0, float(t[-1])), np.array(config.x0, float), t_eval=t,
                    rtol=1e-9, atol=1e-9)
    return t, sol.y.T


def b0(config: LectureOrigenConfig = LectureOrigenConfig()) -> np.ndarray:
    """The lecture's 3×3 Gaussian-correlation ``B_0``."""
    i = np.arange(3.0)
    return config.b_variance * np.exp(-0.5 * ((i[:, None] - i[None, :]) / config.b_length) ** 2)


@dataclass(frozen=True)
class LectureReconstruction:
    x_a: np.ndarray
    """``(n_iterations, T, 3)`` analyses per iteration"""
    rmse: np.ndarray
    """``(n_iterations,)`` RMSE against the truth over all times and components"""
    subsets: tuple[str, ...]
    """the subset observed in each iteration"""
    B: np.ndarray
    """``(T, 3, 3)`` final ``P^a`` per time"""
    y_last: np.ndarray
    """``(T, 3)`` observations of the last iteration (NaN where not observed)"""


def reconstruct(x_true: np.ndarray, rng: np.random.Generator,
                config: LectureOrigenConfig = LectureOrigenConfig()) -> LectureReconstruction:
    """The notebook's ORIGEN iterations on a truth ``(T, 3)``: :func:`toyda.cycling.origen` with a
    batched first cycle from ``x_b = 0``, one subset per iteration, Joseph-form ``B_k ← P^a_k``."""
    T = x_true.shape[0]
    chosen = []

    def draw(c: int) -> np.ndarray:
        subset = SUBSETS[int(rng.integers(len(SUBSETS)))]
        idx = ["xyz".index(ch) for ch in subset]
        y = np.full((T, 3), np.nan)
        y[:, idx] = x_true[:, idx] + config.sigma_o * rng.standard_normal((T, len(idx)))
        chosen.append(subset)
        return y

    it = cycling.origen(draw, config.n_iterations, np.full(3, config.sigma_o), b0(config),
                        start="batched", covariance_update=True, joseph=True)
    rmse = np.sqrt(np.mean((it.x_a - x_true) ** 2, axis=(1, 2)))
    return LectureReconstruction(it.x_a, rmse, tuple(chosen), it.B, it.y)


def train_emulator(x_a: np.ndarray, seed: int = 0, epochs: int = 10_000, ft_epochs: int = 2_000,
                   rollout: int = 4, weight: float = 0.3):
    """The notebook's MLP on ``x_a(k) → x_a(k+1)`` with rollout fine-tuning.

    Returns ``(predict, losses)``: ``predict(x (..., 3)) → next state`` in physical units and
    the loss history (one-step phase, then the fine-tuning phase).
    """
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    torch.manual_seed(seed)
    mean, std = x_a.mean(axis=0), x_a.std(axis=0)
    z = torch.as_tensor((x_a - mean) / std, dtype=torch.float32)
    net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    losses = []
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        opt.zero_grad()
        loss = ((net(z[:-1]) - z[1:]) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    n = z.shape[0] - rollout
    for _ in range(ft_epochs):
        opt.zero_grad()
        one = ((net(z[:-1]) - z[1:]) ** 2).mean()
        state, roll = z[:n], 0.0
        for s in range(1, rollout + 1):
            state = net(state)
            roll = roll + ((state - z[s:s + n]) ** 2).mean()
        loss = one + weight * roll / rollout
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            zz = torch.as_tensor((np.asarray(x) - mean) / std, dtype=torch.float32)
            return net(zz).double().numpy() * std + mean

    return predict, np.array(losses)


def forecasts(predict, x_true: np.ndarray, every: int = 20, length: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Emulator forecasts from the truth at every ``every``-th start, ``length`` steps:
    ``(starts (S,), forecasts (S, length + 1, 3))`` (step 0 is the start state)."""
    starts = np.arange(0, x_true.shape[0] - length, every)
    traj = [x_true[starts]]
    for _ in range(length):
        traj.append(predict(traj[-1]))
    return starts, np.stack(traj, axis=1)
