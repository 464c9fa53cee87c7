"""The learned Lorenz-63 forecast model of ORIGEN: a neural one-step map and its rollouts.

The emulator learns ``x(k) ↦ x(k+1)`` from a trajectory ``(T, 3)`` — in the lab the ORIGEN
reconstruction ``x^a`` (learning from observations only); training on the truth is the
caller's choice of array. The network is an MLP on normalised states that predicts the
increment::

    x̂(k+1) = x(k) + δ ⊙ f_θ((x(k) − μ) / σ)

with ``μ, σ`` the state mean and std and ``δ`` the std of the one-step increments.

1. **One-step training**: minimise ``‖(x̂(k+1) − x(k+1)) / δ‖²`` over all pairs.
2. **Fine-tuning with rollout** (optional): unroll ``K = rollout_steps`` steps from ``x(k)``
   and minimise ``Σ_{j=1..K} ‖(x̂(k+j) − x(k+j)) / δ‖²`` — many subsequent short forecasts,
   so the model is trained on its own outputs and errors cannot accumulate unnoticed.

Skill (:func:`forecast_skill`): the error against a reference trajectory as a function of
lead time, averaged over many start points (the mean over starts of each forecast's RMSE over
the three components), and the **valid time**: the first lead time at which that error
exceeds ``fraction`` (default ½) of the climatological spread of the reference, in model time
units and in Lyapunov times ``λ₁ t`` (``λ₁ ≈ 0.906``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from toyda import nets

LYAPUNOV_EXPONENT = 0.906
"""Leading Lyapunov exponent of Lorenz-63 at (σ, ρ, β) = (10, 28, 8/3), per model time unit."""

VALID_FRACTION = 0.5
"""Default valid-time threshold, as a fraction of the climatological spread."""

TRAINING_DATA_DEFAULTS = dict(n_steps=5000, dt=0.01, n_cycles=20, sigma_o=1.0)
"""ORIGEN settings for the emulator's training data: a 50-time-unit trajectory (about 55
loops around the attractor, ~0.5 s to reconstruct). The lecture's 500-step demo covers only
5 time units, too few for a model that must forecast everywhere on the attractor."""

DEFAULT_ROLLOUT_STEPS = 10
"""Suggested ``rollout_steps`` for fine-tuning (0.1 time units at ``dt = 0.01``): on the default
data it roughly doubles the valid time of one-step training."""

CHECKPOINT_FORMAT = "dalab.emulator/1"

ProgressFn = nets.ProgressFn


@dataclass(frozen=True)
class EmulatorConfig:
    """Architecture and training settings of the Lorenz-63 emulator."""

    hidden: int = 128
    """width of the hidden layers"""
    n_layers: int = 3
    """number of hidden layers"""
    batch_size: int = 512
    """pairs (or rollout windows) per minibatch"""
    epochs: int = 150
    """maximum one-step epochs"""
    lr: float = 2e-3
    """Adam learning rate of the one-step phase"""
    rollout_epochs: int = 30
    """maximum epochs of rollout fine-tuning (when ``rollout_steps > 0``)"""
    rollout_lr: float = 5e-4
    """Adam learning rate of the fine-tuning phase"""
    patience: int = 20
    """early stopping: epochs without a better validation loss"""
    val_fraction: float = 0.2
    """the last fraction of the trajectory (in time) held out for validation"""

    def __post_init__(self) -> None:
        for name in ("hidden", "n_layers", "batch_size", "epochs", "rollout_epochs", "patience"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("lr", "rollout_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")


@dataclass(frozen=True)
class EmulatorNormalisation:
    """State mean ``μ``, state std ``σ`` and increment std ``δ`` (per component)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    step_std: tuple[float, float, float]


class _Net(nn.Module):
    def __init__(self, config: EmulatorConfig, norm: EmulatorNormalisation) -> None:
        super().__init__()
        self.mlp = nets.mlp([3] + [config.hidden] * config.n_layers + [3])
        for name in ("mean", "std", "step_std"):
            self.register_buffer(name, torch.tensor(getattr(norm, name), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One step, physical units ``(..., 3) → (..., 3)``."""
        return x + self.step_std * self.mlp((x - self.mean) / self.std)


@dataclass
class Emulator:
    """A trained one-step map with its normalisation, settings and training history."""

    net: _Net
    normalisation: EmulatorNormalisation
    dt: float
    """model time step of the training trajectory"""
    config: EmulatorConfig
    rollout_steps: int = 0
    """steps unrolled in fine-tuning (0: one-step training only)"""
    history: dict[str, list[float]] = field(default_factory=dict)
    """per epoch: ``train``, ``val`` (one-step phase), ``rollout_train``, ``rollout_val``"""
    seed: int = 0
    train_seconds: float = 0.0
    one_step: "Emulator | None" = None
    """the same training call's model at the end of the one-step phase, before rollout
    fine-tuning (``None`` when ``rollout_steps == 0``: then this model is it); not saved in
    the checkpoint — save it separately"""

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def step(self, x: np.ndarray) -> np.ndarray:
        """``x(k) ↦ x̂(k+1)`` for states ``(..., 3)``."""
        x = _states(x, "x", min_len=None)
        with torch.no_grad():
            out = self.net(torch.as_tensor(x, dtype=torch.float32, device=self.device))
        return out.double().cpu().numpy()

    def save(self, f: str | BinaryIO) -> None:
        """Write a checkpoint (weights, normalisation, config, history) to a path or file object."""
        nets.save_checkpoint(
            f, CHECKPOINT_FORMAT, self.net,
            normalisation=asdict(self.normalisation), config=asdict(self.config),
            dt=float(self.dt), rollout_steps=int(self.rollout_steps),
            history={k: [float(v) for v in vs] for k, vs in self.history.items()},
            seed=int(self.seed), train_seconds=float(self.train_seconds))

    @classmethod
    def load(cls, f: str | BinaryIO, device: str | torch.device | None = None) -> "Emulator":
        """Read a checkpoint written by :meth:`save` (onto ``device``, default CUDA if present)."""
        ck = nets.load_checkpoint(f, CHECKPOINT_FORMAT, "an emulator")
        norm = EmulatorNormalisation(**{k: tuple(v) for k, v in ck["normalisation"].items()})
        config = EmulatorConfig(**ck["config"])
        net = nets.load_weights(_Net(config, norm), ck, device)
        return cls(net=net, normalisation=norm, dt=ck["dt"], config=config,
                   rollout_steps=ck["rollout_steps"], history=ck["history"], seed=ck["seed"],
                   train_seconds=ck["train_seconds"])


def save(emulator: Emulator, f: str | BinaryIO) -> None:
    """Write ``emulator`` to a path or file object."""
    emulator.save(f)


def load(f: str | BinaryIO, device: str | torch.device | None = None) -> Emulator:
    """Read an emulator written by :func:`save`."""
    return Emulator.load(f, device)


# ----------------------------------------------------------------------------- training


def _states(x, name: str, min_len: int | None = 2) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3) (Lorenz-63 states), got {x.shape}")
    if min_len is not None and (x.ndim != 2 or x.shape[0] < min_len):
        raise ValueError(f"{name} must be a trajectory of shape (T, 3) with T >= {min_len}, "
                         f"got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return x


def _windows(n_states: int, k: int) -> np.ndarray:
    """Start indices of all windows ``[s, s + k]`` inside ``n_states`` states."""
    return np.arange(max(n_states - k, 0))


def _rollout_loss(net: _Net, traj: torch.Tensor, starts: np.ndarray, k: int) -> torch.Tensor:
    """``Σ_{j=1..k} mean ‖(x̂(s+j) − x(s+j)) / δ‖²`` over the windows from ``starts``."""
    idx = torch.as_tensor(starts, device=traj.device)
    x = traj[idx]
    loss = torch.zeros((), device=traj.device)
    for j in range(1, k + 1):
        x = net(x)
        loss = loss + torch.mean(((x - traj[idx + j]) / net.step_std) ** 2)
    return loss


def _fit(net: _Net, traj_tr: torch.Tensor, traj_va: torch.Tensor, k: int, epochs: int, lr: float,
         config: EmulatorConfig, rng: np.random.Generator, history: dict[str, list[float]],
         keys: tuple[str, str], progress: ProgressFn | None, epoch0: int, n_total: int) -> None:
    """One training phase on ``k``-step windows (``k = 1``: one-step training)."""
    starts_tr, starts_va = _windows(len(traj_tr), k), _windows(len(traj_va), k)
    if starts_tr.size == 0 or starts_va.size == 0:
        raise ValueError(f"the trajectory is too short for {k}-step windows in both the training "
                         f"({len(traj_tr)} states) and validation ({len(traj_va)} states) parts")
    nets.fit(net, starts_tr, lambda sb: _rollout_loss(net, traj_tr, sb, k),
             lambda: (float(_rollout_loss(net, traj_va, starts_va, k)), {}),
             epochs=epochs, lr=lr, batch_size=config.batch_size, patience=config.patience,
             rng=rng, history=history, keys=keys, progress=progress, epoch0=epoch0,
             n_total=n_total)


def train_emulator(states: np.ndarray, dt: float, epochs: int | None = None,
                   rollout_steps: int = 0, seed: int = 0,
                   config: EmulatorConfig = EmulatorConfig(), *,
                   rollout_epochs: int | None = None, device: str | torch.device | None = None,
                   progress: ProgressFn | None = None) -> Emulator:
    """Train the one-step map on a trajectory, optionally fine-tuned with rollout.

    Parameters
    ----------
    states : ndarray, shape ``(T, 3)``
        Consecutive states ``dt`` apart: the ORIGEN reconstruction ``x^a`` (or the truth).
    dt : float
        Their time step (``> 0``); stored with the model for lead times.
    epochs : int, optional
        One-step epochs (default ``config.epochs``); early stopping on the held-out last
        ``config.val_fraction`` of the trajectory keeps the best weights.
    rollout_steps : int
        ``0``: one-step training only. ``K >= 1``: then fine-tune on the loss summed over ``K``
        unrolled steps for ``rollout_epochs`` (default ``config.rollout_epochs``).
    seed : int
        Seeds the weights (``torch.manual_seed`` in a forked RNG state) and the minibatch
        order (``numpy.random.Generator``).
    device : optional
        Default CUDA when available, else CPU.
    progress : callable, optional
        ``progress(epoch, n_epochs, train_loss, val_loss)`` after each epoch of both phases
        (``n_epochs`` counts both; early stopping may end a phase before).

    Returns
    -------
    Emulator
        The final model; with ``rollout_steps >= 1`` its ``one_step`` attribute holds the
        model as it was after the one-step phase, so one call yields both (the one-step
        phase is trained once).
    """
    x = _states(states, "states", min_len=10)
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and > 0, got {dt!r}")
    epochs = config.epochs if epochs is None else epochs
    rollout_epochs = config.rollout_epochs if rollout_epochs is None else rollout_epochs
    for name, value, low in (("epochs", epochs, 1), ("rollout_steps", rollout_steps, 0),
                             ("rollout_epochs", rollout_epochs, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    n_val = max(2, int(round(config.val_fraction * len(x))))
    x_tr, x_va = x[:-n_val], x[-n_val:]
    if rollout_steps >= min(len(x_tr), len(x_va)):
        raise ValueError(f"rollout_steps={rollout_steps} needs windows longer than the held-out "
                         f"part ({len(x_va)} states); use fewer steps or a longer trajectory")
    inc = np.diff(x_tr, axis=0)
    norm = EmulatorNormalisation(mean=tuple(float(v) for v in x_tr.mean(axis=0)),
                                 std=tuple(float(v) for v in x_tr.std(axis=0)),
                                 step_std=tuple(float(v) for v in inc.std(axis=0)))
    if min(norm.std) == 0 or min(norm.step_std) == 0:
        raise ValueError("states must vary in every component (zero std found)")
    dev = nets.default_device(device)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=dev)  # noqa: E731
    traj_tr, traj_va = as_t(x_tr), as_t(x_va)
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {"train": [], "val": [], "rollout_train": [],
                                       "rollout_val": []}
    n_total = epochs + (rollout_epochs if rollout_steps else 0)
    made = lambda net, hist, k, secs: Emulator(  # noqa: E731
        net=net, normalisation=norm, dt=float(dt), config=config, rollout_steps=k, history=hist,
        seed=int(seed), train_seconds=secs)
    t0 = time.perf_counter()
    one_step = None
    with nets.seeded(seed, dev):
        net = _Net(config, norm).to(dev)
        _fit(net, traj_tr, traj_va, 1, epochs, config.lr, config, rng, history,
             ("train", "val"), progress, 0, n_total)
        if rollout_steps:
            one_step = made(copy.deepcopy(net).eval(), {k: list(v) for k, v in history.items()}, 0,
                            time.perf_counter() - t0)
            _fit(net, traj_tr, traj_va, rollout_steps, rollout_epochs, config.rollout_lr, config,
                 rng, history, ("rollout_train", "rollout_val"), progress, epochs, n_total)
    final = made(net.eval(), history, int(rollout_steps), time.perf_counter() - t0)
    final.one_step = one_step
    return final


# ----------------------------------------------------------------------------- forecasts and skill


def forecast(emulator: Emulator, x0: np.ndarray, n_steps: int) -> np.ndarray:
    """Roll the emulator out from each initial state.

    Parameters
    ----------
    x0 : ndarray, shape ``(N, 3)`` (or ``(3,)``)
        Initial states, e.g. analysis states ``x^a``.
    n_steps : int
        Steps to run (``>= 0``).

    Returns
    -------
    ndarray, shape ``(N, n_steps + 1, 3)`` (or ``(n_steps + 1, 3)`` for a single state)
    """
    x0 = _states(x0, "x0", min_len=None)
    if x0.ndim > 2:
        raise ValueError(f"x0 must have shape (N, 3) or (3,), got {x0.shape}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
    single = x0.ndim == 1
    x = torch.as_tensor(np.atleast_2d(x0), dtype=torch.float32, device=emulator.device)
    out = torch.empty((x.shape[0], n_steps + 1, 3), dtype=torch.float32, device=x.device)
    out[:, 0] = x
    emulator.net.eval()
    with torch.no_grad():
        for k in range(n_steps):
            x = emulator.net(x)
            out[:, k + 1] = x
    res = out.double().cpu().numpy()
    return res[0] if single else res


def one_step_rmse(emulator: Emulator, states: np.ndarray) -> float:
    """RMSE of ``x̂(k+1)`` against ``x(k+1)`` over a trajectory ``(T, 3)`` (e.g. held out)."""
    x = _states(states, "states")
    return float(np.sqrt(np.mean((emulator.step(x[:-1]) - x[1:]) ** 2)))


@dataclass(frozen=True)
class ForecastSkill:
    """Forecast error against a reference trajectory as a function of lead time."""

    lead_time: np.ndarray
    """``(n_steps + 1,)``, model time units"""
    error: np.ndarray
    """``(n_steps + 1,)``, the error averaged over start points: ``mean_s RMSE_s(τ)`` with
    ``RMSE_s`` over the three components of the forecast from start ``s``"""
    rmse: np.ndarray
    """``(n_steps + 1,)``, RMSE over start points and components (dominated by the few
    forecasts that switch lobe early)"""
    spread: float
    """climatological spread of the reference, ``sqrt(mean_i var_t x_i)``"""
    fraction: float
    """threshold as a fraction of ``spread``"""
    threshold: float
    """``fraction × spread``"""
    valid_time: float
    """first lead time with ``error > threshold`` (``inf`` if never within the horizon)"""
    valid_time_lyapunov: float
    """``λ₁ × valid_time`` (Lyapunov times)"""
    starts: np.ndarray
    """start indices into the reference"""


def forecast_skill(emulator: Emulator, reference: np.ndarray, n_steps: int, *,
                   initial: np.ndarray | None = None, n_starts: int = 200,
                   fraction: float = VALID_FRACTION) -> ForecastSkill:
    """RMSE vs lead time and valid time of emulator forecasts.

    Forecasts start from ``initial[s]`` (e.g. the analysis ``x^a``; default the reference
    itself) at ``n_starts`` evenly spaced start indices ``s`` and are compared with
    ``reference[s : s + n_steps + 1]`` (e.g. the truth).

    Parameters
    ----------
    reference : ndarray, shape ``(T, 3)``
        Verifying trajectory, ``emulator.dt`` apart; also gives the climatological spread.
    n_steps : int
        Forecast horizon in steps (``1 <= n_steps < T``).
    initial : ndarray, shape ``(T, 3)``, optional
        Initial states aligned with ``reference``.
    n_starts : int
        Number of start points (at most ``T − n_steps``).
    fraction : float
        Valid-time threshold as a fraction of the climatological spread (default ½).

    Returns
    -------
    ForecastSkill
    """
    ref = _states(reference, "reference")
    init = ref if initial is None else _states(initial, "initial")
    if init.shape != ref.shape:
        raise ValueError(f"initial must have the shape of reference {ref.shape}, got {init.shape}")
    if not isinstance(n_steps, (int, np.integer)) or not 1 <= n_steps < len(ref):
        raise ValueError(f"n_steps must be an integer in 1..{len(ref) - 1}, got {n_steps!r}")
    if not isinstance(n_starts, (int, np.integer)) or n_starts < 1:
        raise ValueError(f"n_starts must be an integer >= 1, got {n_starts!r}")
    if not 0 < fraction:
        raise ValueError(f"fraction must be > 0, got {fraction!r}")
    last = len(ref) - 1 - n_steps
    starts = np.unique(np.round(np.linspace(0, last, min(n_starts, last + 1))).astype(np.int64))
    fc = forecast(emulator, init[starts], n_steps)                          # (S, n+1, 3)
    truth = ref[starts[:, None] + np.arange(n_steps + 1)[None, :]]          # (S, n+1, 3)
    err_s = np.sqrt(np.mean((fc - truth) ** 2, axis=2))                   # (S, n+1)
    err = err_s.mean(axis=0)
    spread = float(np.sqrt(np.mean(ref.var(axis=0))))
    threshold = fraction * spread
    lead = np.arange(n_steps + 1) * emulator.dt
    over = np.flatnonzero(~(err <= threshold))                              # NaN counts as over
    valid = float(lead[over[0]]) if over.size else float("inf")
    return ForecastSkill(lead_time=lead, error=err, rmse=np.sqrt(np.mean(err_s**2, axis=0)),
                         spread=spread, fraction=float(fraction),
                         threshold=threshold, valid_time=valid,
                         valid_time_lyapunov=LYAPUNOV_EXPONENT * valid, starts=starts)
