"""The obs-to-obs network of the lab: learn a forecast step in observation space.

.. math::

    (y_t^{sat}, y_t^{rs}) \\mapsto (\\hat y_{t+1}^{sat}, \\hat y_{t+1}^{rs}(x_q, z_q)),
    \\qquad \\hat y_{t+1}^{rs}(x_q, z_q) = g_θ(\\mathrm{CNN}(y_t^{sat}), \\mathrm{Set}(y_t^{rs}), x_q, z_q)

* **SAT encoder** — a 1D CNN along x with circular padding (the domain wraps), one feature
  vector per column; no position enters it, so it is equivariant to periodic shifts.
* **RS encoder** — DeepSets: ``e_m = ψ(x_m, z_m, y_m)``, pooled by mean and max (commutative,
  so the order of the points does not matter and any number of points is accepted).
* **Query head** — ``g`` of the CNN features interpolated (periodically) at ``x_q``, the set
  embedding, and the position ``(sin 2πx_q/L_x, cos 2πx_q/L_x, z_q/L_z)``.
* **SAT head** — per column, from the CNN features, the set embedding and the position.

Loss ``L = L_sat + α L_rs`` (mean squared errors in normalised units), with the lecture's
normalisation: SAT per channel (mean and std over t and x), RS and truth with one global mean
and std of the truth. Dataset modes: **A** samples ``n_in`` RS input points at random grid
points anywhere in ``xtrue[t]`` plus noise ``σ_rs`` (fresh points every epoch); **B** uses only
the stored radiosondes ``yrs[t]`` at ``rs_ix, rs_iz``. Targets are always ``y_sat[t+1]`` and
``xtrue[t+1]`` at ``n_query`` grid points drawn anywhere.

Evaluation 1 (:func:`predict_profile`) and 2 (:func:`reconstruct_field`) use mode-B inputs
only (the stored observations at ``t``) and compare with the truth at ``t + 1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from toyda.metrics import correlation, rmse
from toyda.observations import TRAINING_DATASET_DEFAULTS, ObsDataset  # noqa: F401 (re-exported)

MODES = ("A", "B")
"""Dataset modes: ``"A"`` synthetic RS points anywhere from the truth, ``"B"`` stored RS only."""

CHECKPOINT_FORMAT = "dalab.obs2obs/1"

ProgressFn = Callable[[int, int, float, float], None]


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Obs2ObsConfig:
    """Architecture and training settings of the obs-to-obs network (defaults that learn)."""

    cnn_channels: int = 32
    """features per column of the SAT encoder"""
    cnn_layers: int = 4
    """circular convolution layers of the SAT encoder"""
    kernel_size: int = 5
    """odd convolution kernel width (columns)"""
    set_dim: int = 32
    """width of the DeepSets encoder ψ and of the pooled set embedding"""
    head_hidden: int = 64
    """hidden width of the query head g"""
    n_in: int = 126
    """RS input points per sample in mode A (7 stations × 18 levels in the lecture)"""
    n_query: int = 256
    """query points per sample for the RS loss"""
    rs_noise: float = 0.02
    """noise std σ_rs added to mode-A input points (physical units)"""
    batch_size: int = 16
    """transitions per minibatch"""
    epochs: int = 60
    """maximum number of epochs (about 25 s on 2 CPU cores with the default dataset)"""
    lr: float = 2e-3
    """Adam learning rate"""
    patience: int = 8
    """early stopping: epochs without a better validation loss before stopping"""
    val_fraction: float = 0.2
    """fraction of each trajectory's transitions (before the test ones) kept for validation
    (early stopping)"""
    test_fraction: float = 0.15
    """fraction of each trajectory's transitions (the last ones in time) never used in training
    or early stopping: the honest held-out test split"""

    def __post_init__(self) -> None:
        for name in ("cnn_channels", "cnn_layers", "set_dim", "head_hidden", "n_in", "n_query",
                     "batch_size", "epochs", "patience"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.kernel_size, (int, np.integer)) or self.kernel_size < 1 \
                or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 1, got {self.kernel_size!r}")
        if not self.rs_noise >= 0:
            raise ValueError(f"rs_noise must be >= 0 (a standard deviation), got {self.rs_noise!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if not 0 <= self.test_fraction < 1 or self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"test_fraction must be in [0, 1) with val_fraction + test_fraction < 1, got "
                             f"{self.test_fraction!r} (val_fraction {self.val_fraction!r})")


@dataclass(frozen=True)
class Normalisation:
    """The lecture's normalisation and the grid geometry, stored with the model.

    SAT per channel, ``y_n = (y − μ_c) / σ_c`` with ``μ_c, σ_c`` over t and x; RS and truth
    with one global ``μ_φ, σ_φ`` of the truth. Coordinates map to ``[0, 1)`` (x, periodic)
    and ``[0, 1]`` (z) with the domain edges ``x_left, L_x, z_bottom, L_z``.
    """

    sat_mean: tuple[float, ...]
    """per-channel mean of y_sat, ``(n_sat,)``"""
    sat_std: tuple[float, ...]
    """per-channel std of y_sat, ``(n_sat,)``"""
    phi_mean: float
    """global mean of the truth (used for RS values and targets)"""
    phi_std: float
    """global std of the truth"""
    x_left: float
    """left edge of the periodic domain"""
    lx: float
    """domain length in x (the period)"""
    z_bottom: float
    """bottom of the domain"""
    lz: float
    """domain height"""
    nx: int
    """number of columns"""
    nz: int
    """number of levels"""

    @classmethod
    def from_dataset(cls, ds: ObsDataset, snapshots: np.ndarray | None = None) -> "Normalisation":
        """Statistics over ``snapshots`` (indices into ``ds``; default all) and ``ds``'s grid."""
        idx = np.arange(ds.n_snapshots) if snapshots is None else np.asarray(snapshots)
        sat = np.asarray(ds.ysat, float)[idx]
        phi = np.asarray(ds.xtrue, float)[idx]
        sat_std = sat.std(axis=(0, 2))
        if np.any(sat_std == 0) or phi.std() == 0:
            raise ValueError("cannot normalise: a SAT channel or the truth is constant over the "
                             "training snapshots")
        x, z = np.asarray(ds.x, float), np.asarray(ds.z, float)
        dx, dz = x[1] - x[0], z[1] - z[0]
        return cls(sat_mean=tuple(float(v) for v in sat.mean(axis=(0, 2))),
                   sat_std=tuple(float(v) for v in sat_std),
                   phi_mean=float(phi.mean()), phi_std=float(phi.std()),
                   x_left=float(x[0] - dx / 2), lx=float(dx * x.size),
                   z_bottom=float(z[0] - dz / 2), lz=float(dz * z.size),
                   nx=int(x.size), nz=int(z.size))

    @property
    def n_sat(self) -> int:
        return len(self.sat_mean)

    def sat(self, y: np.ndarray) -> np.ndarray:
        """Normalise SAT ``(..., n_sat, nx)`` per channel."""
        return (y - np.asarray(self.sat_mean)[:, None]) / np.asarray(self.sat_std)[:, None]

    def sat_inverse(self, y_n: np.ndarray) -> np.ndarray:
        return y_n * np.asarray(self.sat_std)[:, None] + np.asarray(self.sat_mean)[:, None]

    def phi(self, v: np.ndarray) -> np.ndarray:
        """Normalise RS values or the truth (global statistics)."""
        return (v - self.phi_mean) / self.phi_std

    def phi_inverse(self, v_n: np.ndarray) -> np.ndarray:
        return v_n * self.phi_std + self.phi_mean

    def x_unit(self, x: np.ndarray) -> np.ndarray:
        """x → ``[0, 1)``, wrapped (periodic)."""
        return np.mod((np.asarray(x, float) - self.x_left) / self.lx, 1.0)

    def z_unit(self, z: np.ndarray) -> np.ndarray:
        """z → ``[0, 1]``."""
        return (np.asarray(z, float) - self.z_bottom) / self.lz


# ----------------------------------------------------------------------------- the network


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class Obs2ObsNet(nn.Module):
    """SAT 1D-CNN + RS DeepSets + query head + SAT head.

    All inputs are normalised: SAT ``(B, n_sat, nx)``; RS points as unit coordinates
    ``rs_x, rs_z`` and values ``rs_y``, each ``(B, N)``; queries ``xq, zq`` ``(B, Q)``.
    """

    def __init__(self, n_sat: int, config: Obs2ObsConfig = Obs2ObsConfig()) -> None:
        super().__init__()
        c, k = config.cnn_channels, config.kernel_size
        convs: list[nn.Module] = []
        for i in range(config.cnn_layers):
            dilation = 2 ** (i % 3)     # 1, 2, 4, 1, …: receptive field ±(k−1)/2 · Σ dilation
            convs += [nn.Conv1d(n_sat if i == 0 else c, c, k, padding=dilation * (k // 2),
                                dilation=dilation, padding_mode="circular"), nn.GELU()]
        self.sat_encoder = nn.Sequential(*convs)
        e = config.set_dim
        self.psi = _mlp([4, e, e, e])                 # ψ(sin 2πx, cos 2πx, z, y)
        self.rho = _mlp([2 * e, e, e])                # ρ(mean ⊕ max)
        self.sat_head = nn.Sequential(nn.Conv1d(c + e + 2, c, 1), nn.GELU(), nn.Conv1d(c, n_sat, 1))
        h = config.head_hidden
        self.query_head = _mlp([c + e + 3, h, h, h, 1])

    @staticmethod
    def _position(x_unit: torch.Tensor) -> torch.Tensor:
        a = 2 * torch.pi * x_unit
        return torch.stack([torch.sin(a), torch.cos(a)], dim=-1)

    def encode_sat(self, ysat: torch.Tensor) -> torch.Tensor:
        """Per-column features ``(B, C, nx)`` of the curtain ``(B, n_sat, nx)``."""
        return self.sat_encoder(ysat)

    def encode_set(self, rs_x: torch.Tensor, rs_z: torch.Tensor, rs_y: torch.Tensor) -> torch.Tensor:
        """Set embedding ``(B, E)`` of ``N >= 1`` points ``(B, N)``; invariant to their order."""
        e = self.psi(torch.cat([self._position(rs_x), rs_z[..., None], rs_y[..., None]], dim=-1))
        return self.rho(torch.cat([e.mean(dim=1), e.amax(dim=1)], dim=-1))

    @staticmethod
    def interpolate(features: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
        """Periodic linear interpolation of column features ``(B, C, nx)`` at ``xq (B, Q)``
        (unit coordinates; column ``i`` sits at ``(i + ½)/nx``) → ``(B, Q, C)``."""
        nx = features.shape[-1]
        s = xq * nx - 0.5
        i0 = torch.floor(s)
        w = (s - i0)[..., None]
        i0 = i0.long() % nx
        i1 = (i0 + 1) % nx
        f = features.transpose(1, 2)                    # (B, nx, C)
        take = lambda i: torch.gather(f, 1, i[..., None].expand(-1, -1, f.shape[-1]))  # noqa: E731
        return (1 - w) * take(i0) + w * take(i1)

    def forward(self, ysat: torch.Tensor, rs_x: torch.Tensor, rs_z: torch.Tensor,
                rs_y: torch.Tensor, xq: torch.Tensor, zq: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(ŷ_sat (B, n_sat, nx), ŷ_rs (B, Q))``, normalised."""
        feats = self.encode_sat(ysat)
        emb = self.encode_set(rs_x, rs_z, rs_y)
        B, _, nx = feats.shape
        col = (torch.arange(nx, device=ysat.device, dtype=ysat.dtype) + 0.5) / nx
        pos = self._position(col).T[None].expand(B, -1, -1)
        sat = self.sat_head(torch.cat([feats, emb[:, :, None].expand(-1, -1, nx), pos], dim=1))
        q = torch.cat([self.interpolate(feats, xq), emb[:, None, :].expand(-1, xq.shape[1], -1),
                       self._position(xq), zq[..., None]], dim=-1)
        return sat, self.query_head(q)[..., 0]


# ----------------------------------------------------------------------------- data


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def split_transitions(ds: ObsDataset, val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Split the valid transitions by time: the last ``val_fraction`` of each trajectory's
    transitions (at least one) are validation, the earlier ones training.

    Returns
    -------
    train, val : int arrays of transition indices ``t``
    """
    tr = ds.transitions()
    train, val = [], []
    for k in np.unique(ds.traj[tr]):
        tk = tr[ds.traj[tr] == k]
        n_val = max(1, int(round(val_fraction * tk.size))) if tk.size > 1 else 0
        train.append(tk[:tk.size - n_val])
        val.append(tk[tk.size - n_val:])
    train, val = np.concatenate(train), np.concatenate(val)
    if train.size == 0 or val.size == 0:
        raise ValueError(f"the dataset has {tr.size} valid transitions; need at least 2 in one "
                         "trajectory to split into training and validation (use more snapshots, "
                         f"e.g. generate_dataset(**TRAINING_DATASET_DEFAULTS))")
    return train, val


def split_train_val_test(ds: ObsDataset, val_fraction: float = 0.2, test_fraction: float = 0.15
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each trajectory's transitions in time: the last ``test_fraction`` (at least one
    when > 0) are the test split, the ``val_fraction`` before them validation (early
    stopping), the earlier ones training.

    Returns
    -------
    train, val, test : int arrays of transition indices ``t``
    """
    tr = ds.transitions()
    parts: tuple[list, list, list] = ([], [], [])
    for k in np.unique(ds.traj[tr]):
        tk = tr[ds.traj[tr] == k]
        n_test = max(1, int(round(test_fraction * tk.size))) if test_fraction > 0 and tk.size > 2 else 0
        rest = tk[:tk.size - n_test]
        n_val = max(1, int(round(val_fraction * tk.size))) if rest.size > 1 else 0
        parts[0].append(rest[:rest.size - n_val])
        parts[1].append(rest[rest.size - n_val:])
        parts[2].append(tk[tk.size - n_test:])
    train, val, test = (np.concatenate(p).astype(np.int64) for p in parts)
    if train.size == 0 or val.size == 0:
        raise ValueError(f"the dataset has {tr.size} valid transitions; need at least 2 in one "
                         "trajectory to split into training and validation (use more snapshots, "
                         f"e.g. generate_dataset(**TRAINING_DATASET_DEFAULTS))")
    return train, val, test


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be 'A' (RS input points sampled anywhere from xtrue[t] "
                         f"plus noise) or 'B' (only the stored radiosondes yrs[t]), got {mode!r}")
    return mode


class _Batcher:
    """The normalised dataset on a device, and minibatches of (inputs, targets)."""

    def __init__(self, ds: ObsDataset, norm: Normalisation, device: torch.device) -> None:
        as_t = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
        self.phi = as_t(norm.phi(np.asarray(ds.xtrue, float)))          # (T, nz, nx)
        self.sat = as_t(norm.sat(np.asarray(ds.ysat, float)))           # (T, n_sat, nx)
        self.xu = as_t(norm.x_unit(ds.x))
        self.zu = as_t(norm.z_unit(ds.z))
        nv = len(ds.rs_iz)
        self.rs_ix = np.repeat(np.asarray(ds.rs_ix), nv)                  # station-major
        self.rs_iz = np.tile(np.asarray(ds.rs_iz), len(ds.rs_ix))
        self.yrs = as_t(norm.phi(np.asarray(ds.yrs, float)).reshape(ds.n_snapshots, -1))
        self.inv_phi_std = 1.0 / norm.phi_std
        self.nz, self.nx = ds.xtrue.shape[1:]
        self.device = device

    def inputs(self, t: np.ndarray, mode: str, n_in: int, rs_noise: float,
               rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """Normalised ``(ysat, rs_x, rs_z, rs_y)`` at times ``t (B,)``."""
        tt = torch.as_tensor(t, device=self.device)
        if mode == "B":
            ix = np.broadcast_to(self.rs_ix, (t.size, self.rs_ix.size))
            iz = np.broadcast_to(self.rs_iz, (t.size, self.rs_iz.size))
            y = self.yrs[tt]
        else:
            ix = rng.integers(0, self.nx, (t.size, n_in))
            iz = rng.integers(0, self.nz, (t.size, n_in))
            y = self.phi[tt[:, None], torch.as_tensor(iz, device=self.device),
                         torch.as_tensor(ix, device=self.device)]
            noise = rng.standard_normal((t.size, n_in)).astype(np.float32)
            y = y + torch.as_tensor(noise * rs_noise * self.inv_phi_std, device=self.device)
        ix = torch.as_tensor(np.ascontiguousarray(ix), device=self.device)
        iz = torch.as_tensor(np.ascontiguousarray(iz), device=self.device)
        return self.sat[tt], self.xu[ix], self.zu[iz], y

    def queries(self, t: np.ndarray, n_query: int, rng: np.random.Generator
                ) -> tuple[torch.Tensor, ...]:
        """Random grid points ``(xq, zq)`` and the normalised truth there at ``t + 1``."""
        ix = torch.as_tensor(rng.integers(0, self.nx, (t.size, n_query)), device=self.device)
        iz = torch.as_tensor(rng.integers(0, self.nz, (t.size, n_query)), device=self.device)
        tt = torch.as_tensor(t + 1, device=self.device)
        return self.xu[ix], self.zu[iz], self.phi[tt[:, None], iz, ix], self.sat[tt]


# ----------------------------------------------------------------------------- the trained model


@dataclass
class TrainedObs2Obs:
    """A trained network with everything needed to use it again (save / load round-trip)."""

    net: Obs2ObsNet
    normalisation: Normalisation
    config: Obs2ObsConfig
    mode: str
    """dataset mode used in training (``"A"`` or ``"B"``)"""
    alpha: float
    """weight α of the RS query loss"""
    climatology: np.ndarray
    """mean of ``xtrue`` over the training snapshots, ``(nz, nx)`` (a baseline)"""
    history: dict[str, list[float]] = field(default_factory=dict)
    """per epoch: ``train``, ``val`` (total loss), ``val_sat``, ``val_rs``"""
    train_transitions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_transitions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """validation transitions (early stopping chose the weights on them)"""
    test_transitions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """test transitions: never used in training or early stopping"""
    best_epoch: int = 0
    """epoch (1-based) whose weights were kept (lowest validation loss)"""
    seed: int = 0
    train_seconds: float = 0.0

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def predict(self, ysat: np.ndarray, rs_x: np.ndarray, rs_z: np.ndarray, rs_y: np.ndarray,
                xq: np.ndarray, zq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One forecast step in physical units.

        Parameters
        ----------
        ysat : ndarray ``(n_sat, nx)``
            SAT curtain at ``t``.
        rs_x, rs_z, rs_y : ndarray ``(N,)``
            RS input points at ``t`` (positions in domain units, values), any ``N >= 1``.
        xq, zq : ndarray ``(Q,)``
            Query positions (domain units; x wraps around).

        Returns
        -------
        sat : ndarray ``(n_sat, nx)``, the predicted curtain at ``t + 1``
        values : ndarray ``(Q,)``, the predicted values at the query points at ``t + 1``
        """
        n = self.normalisation
        ysat = np.asarray(ysat, float)
        if ysat.shape != (n.n_sat, n.nx):
            raise ValueError(f"ysat must have shape (n_sat, nx) = {(n.n_sat, n.nx)}, got {ysat.shape}")
        rs = [np.asarray(a, float).ravel() for a in (rs_x, rs_z, rs_y)]
        if rs[0].size == 0 or not rs[0].size == rs[1].size == rs[2].size:
            raise ValueError("rs_x, rs_z and rs_y must be non-empty and of equal length, got "
                             f"{[a.size for a in rs]}")
        xq, zq = np.asarray(xq, float).ravel(), np.asarray(zq, float).ravel()
        if xq.size != zq.size:
            raise ValueError(f"xq and zq must have equal length, got {xq.size} and {zq.size}")
        dev = self.device
        f = lambda a: torch.as_tensor(np.asarray(a, np.float32)[None], device=dev)  # noqa: E731
        self.net.eval()
        with torch.no_grad():
            sat, q = self.net(f(n.sat(ysat)), f(n.x_unit(rs[0])), f(n.z_unit(rs[1])),
                              f(n.phi(rs[2])), f(n.x_unit(xq)), f(n.z_unit(zq)))
        return (n.sat_inverse(sat[0].double().cpu().numpy()),
                n.phi_inverse(q[0].double().cpu().numpy()))

    def save(self, f: str | BinaryIO) -> None:
        """Write a checkpoint (weights, normalisation, config, history) to a path or file object."""
        torch.save({
            "format": CHECKPOINT_FORMAT,
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "config": asdict(self.config), "normalisation": asdict(self.normalisation),
            "mode": self.mode, "alpha": float(self.alpha),
            "climatology": torch.as_tensor(self.climatology),
            "history": {k: [float(v) for v in vs] for k, vs in self.history.items()},
            "train_transitions": torch.as_tensor(self.train_transitions),
            "val_transitions": torch.as_tensor(self.val_transitions),
            "test_transitions": torch.as_tensor(self.test_transitions),
            "best_epoch": int(self.best_epoch), "seed": int(self.seed),
            "train_seconds": float(self.train_seconds),
        }, f)

    @classmethod
    def load(cls, f: str | BinaryIO, device: str | torch.device | None = None) -> "TrainedObs2Obs":
        """Read a checkpoint written by :meth:`save` (onto ``device``, default CUDA if present)."""
        ck = torch.load(f, map_location="cpu", weights_only=True)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not an obs-to-obs checkpoint (expected format {CHECKPOINT_FORMAT!r})")
        config = Obs2ObsConfig(**ck["config"])
        nd = dict(ck["normalisation"])
        nd["sat_mean"], nd["sat_std"] = tuple(nd["sat_mean"]), tuple(nd["sat_std"])
        norm = Normalisation(**nd)
        net = Obs2ObsNet(norm.n_sat, config)
        net.load_state_dict(ck["state_dict"])
        net.to(_default_device(device)).eval()
        return cls(net=net, normalisation=norm, config=config, mode=ck["mode"], alpha=ck["alpha"],
                   climatology=ck["climatology"].numpy(), history=ck["history"],
                   train_transitions=ck["train_transitions"].numpy(),
                   val_transitions=ck["val_transitions"].numpy(),
                   test_transitions=ck.get("test_transitions", torch.zeros(0, dtype=torch.int64)).numpy(),
                   best_epoch=ck["best_epoch"],
                   seed=ck["seed"], train_seconds=ck["train_seconds"])


# ----------------------------------------------------------------------------- training


def _loss(net: Obs2ObsNet, batcher: _Batcher, t: np.ndarray, mode: str, config: Obs2ObsConfig,
          rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ysat, rx, rz, ry = batcher.inputs(t, mode, config.n_in, config.rs_noise, rng)
    xq, zq, target_q, target_sat = batcher.queries(t, config.n_query, rng)
    sat, q = net(ysat, rx, rz, ry, xq, zq)
    return torch.mean((sat - target_sat) ** 2), torch.mean((q - target_q) ** 2)


def train(ds: ObsDataset, config: Obs2ObsConfig = Obs2ObsConfig(), mode: str = "A",
          epochs: int | None = None, alpha: float = 1.0, lr: float | None = None, seed: int = 0,
          device: str | torch.device | None = None,
          progress: ProgressFn | None = None) -> TrainedObs2Obs:
    """Train the obs-to-obs network on the transitions ``t → t + 1`` of ``ds``.

    Loss ``L = L_sat + α L_rs`` (MSE in normalised units). The last ``config.test_fraction`` of
    each trajectory's transitions are the test split and the ``config.val_fraction`` before
    them validation (:func:`split_train_val_test`); normalisation and
    the climatology use the training snapshots only. Adam, minibatches of
    ``config.batch_size`` transitions with fresh random RS points (mode A) and query points
    each epoch; early stopping after ``config.patience`` epochs without a lower validation
    loss (validation draws are fixed), keeping the best weights.

    Parameters
    ----------
    ds : ObsDataset
        Training data (e.g. ``generate_dataset(**TRAINING_DATASET_DEFAULTS)``).
    config : Obs2ObsConfig
        Architecture and training settings.
    mode : ``"A"`` or ``"B"``
        RS inputs sampled anywhere from the truth plus noise (A) or the stored radiosondes (B).
    epochs, lr : optional
        Override ``config.epochs`` / ``config.lr``.
    alpha : float
        Weight of the RS query loss (``>= 0``).
    seed : int
        Seeds the weights (``torch.manual_seed`` inside a forked RNG state, so the caller's
        global torch state is untouched) and the sampling (``numpy.random.Generator``).
    device : optional
        ``"cuda"`` / ``"cpu"``; default CUDA when available.
    progress : callable, optional
        Called as ``progress(epoch, n_epochs, train_loss, val_loss)`` after each epoch (early
        stopping may end training before ``epoch == n_epochs``).

    Returns
    -------
    TrainedObs2Obs
    """
    mode = _check_mode(mode)
    epochs = config.epochs if epochs is None else epochs
    lr = config.lr if lr is None else lr
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0 (weight of the RS query loss), got {alpha!r}")
    dev = _default_device(device)
    train_t, val_t, test_t = split_train_val_test(ds, config.val_fraction, config.test_fraction)
    train_snaps = np.union1d(train_t, train_t + 1)
    norm = Normalisation.from_dataset(ds, train_snaps)
    climatology = np.asarray(ds.xtrue, float)[train_snaps].mean(axis=0)
    batcher = _Batcher(ds, norm, dev)
    rng = np.random.default_rng(seed)
    val_rng_seed = int(rng.integers(2**31))
    t0 = time.perf_counter()
    history: dict[str, list[float]] = {"train": [], "val": [], "val_sat": [], "val_rs": []}
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        net = Obs2ObsNet(norm.n_sat, config).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=lr / 20)
        best, best_state, best_epoch, waited = np.inf, None, 0, 0
        for epoch in range(1, epochs + 1):
            net.train()
            order = rng.permutation(train_t)
            total, count = 0.0, 0
            for i in range(0, order.size, config.batch_size):
                tb = order[i:i + config.batch_size]
                l_sat, l_rs = _loss(net, batcher, tb, mode, config, rng)
                loss = l_sat + alpha * l_rs
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * tb.size
                count += tb.size
            sched.step()
            net.eval()
            vrng = np.random.default_rng(val_rng_seed)
            with torch.no_grad():
                v_sat, v_rs = (float(v) for v in _loss(net, batcher, val_t, mode, config, vrng))
            val = v_sat + alpha * v_rs
            for key, v in (("train", total / count), ("val", val), ("val_sat", v_sat),
                           ("val_rs", v_rs)):
                history[key].append(v)
            if progress is not None:
                progress(epoch, epochs, total / count, val)
            if val < best:
                best, best_epoch, waited = val, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= config.patience:
                    break
        if best_state is None:
            raise ValueError(f"training diverged: the validation loss was never finite "
                             f"({history['val'][-1]!r}); try a smaller lr than {lr}")
        net.load_state_dict(best_state)
    net.eval()
    return TrainedObs2Obs(net=net, normalisation=norm, config=config, mode=mode, alpha=float(alpha),
                          climatology=climatology, history=history, train_transitions=train_t,
                          val_transitions=val_t, test_transitions=test_t, best_epoch=best_epoch, seed=int(seed),
                          train_seconds=time.perf_counter() - t0)


def save(model: TrainedObs2Obs, f: str | BinaryIO) -> None:
    """Write ``model`` to a path or file object (see :meth:`TrainedObs2Obs.save`)."""
    model.save(f)


def load(f: str | BinaryIO, device: str | torch.device | None = None) -> TrainedObs2Obs:
    """Read a model written by :func:`save` from a path or file object."""
    return TrainedObs2Obs.load(f, device)


# ----------------------------------------------------------------------------- evaluation


def _check_compatible(model: TrainedObs2Obs, ds: ObsDataset) -> None:
    n = model.normalisation
    got = (ds.ysat.shape[1], ds.xtrue.shape[1], ds.xtrue.shape[2])
    if got != (n.n_sat, n.nz, n.nx):
        raise ValueError(f"dataset (n_sat, nz, nx) = {got} does not match the model's "
                         f"{(n.n_sat, n.nz, n.nx)}; use a dataset on the training grid")


def _check_transition(ds: ObsDataset, t) -> int:
    tr = ds.transitions()
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or int(t) not in set(tr.tolist()):
        runs = np.split(tr, np.flatnonzero(np.diff(tr) > 1) + 1)
        allowed = ", ".join(f"{r[0]}..{r[-1]}" if r.size > 1 else f"{r[0]}" for r in runs if r.size)
        raise ValueError(f"t={t!r} is not a valid transition: (t, t+1) must be consecutive "
                         f"snapshots of one trajectory; valid t are {allowed or 'none'}")
    return int(t)


def _stored_inputs(ds: ObsDataset, t: int) -> tuple[np.ndarray, ...]:
    """Mode-B inputs at ``t``: the SAT curtain and the stored radiosondes (positions, values)."""
    nv = len(ds.rs_iz)
    rs_x = np.repeat(np.asarray(ds.x)[ds.rs_ix], nv)
    rs_z = np.tile(np.asarray(ds.z)[ds.rs_iz], len(ds.rs_ix))
    return np.asarray(ds.ysat[t]), rs_x, rs_z, np.asarray(ds.yrs[t]).ravel()


@dataclass(frozen=True)
class ProfilePrediction:
    """Evaluation 1: a predicted profile at ``t + 1`` at one column."""

    t: int
    column: int
    is_station: bool
    """whether a radiosonde stands at this column (then it is not an unseen location)"""
    z: np.ndarray
    """levels, ``(nz,)``"""
    pred: np.ndarray
    """predicted profile at ``t + 1``, ``(nz,)``"""
    truth: np.ndarray
    """``xtrue[t + 1][:, column]``, ``(nz,)``"""
    persistence: np.ndarray
    """``xtrue[t][:, column]`` (not seen by the model), ``(nz,)``"""
    rmse: float
    rmse_persistence: float


def predict_profile(model: TrainedObs2Obs, ds: ObsDataset, t: int, column: int) -> ProfilePrediction:
    """Evaluation 1: predict the profile at ``t + 1`` at ``column`` (all levels) from the stored
    observations at ``t`` (SAT and radiosondes, mode-B inputs), and compare with the truth.

    A column with a radiosonde is allowed; ``is_station`` says so.
    """
    _check_compatible(model, ds)
    t = _check_transition(ds, t)
    nx = ds.xtrue.shape[2]
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)) or not 0 <= column < nx:
        raise ValueError(f"column must be an integer in 0..{nx - 1}, got {column!r}")
    ysat, rx, rz, ry = _stored_inputs(ds, t)
    z = np.asarray(ds.z, float)
    _, pred = model.predict(ysat, rx, rz, ry, np.full(z.size, ds.x[column]), z)
    truth = np.asarray(ds.xtrue[t + 1][:, column], float)
    prev = np.asarray(ds.xtrue[t][:, column], float)
    is_station = bool(int(column) in set(ds.rs_ix.tolist()))
    return ProfilePrediction(t=t, column=int(column), is_station=is_station, z=z, pred=pred,
                             truth=truth, persistence=prev, rmse=rmse(pred, truth),
                             rmse_persistence=rmse(prev, truth))


@dataclass(frozen=True)
class FieldReconstruction:
    """Evaluation 2: the field at ``t + 1`` from querying every grid point, with baselines."""

    t: int
    pred: np.ndarray
    """predicted field at ``t + 1``, ``(nz, nx)``"""
    truth: np.ndarray
    """``xtrue[t + 1]``"""
    previous: np.ndarray
    """``xtrue[t]`` (the reference; the model does not see it)"""
    difference: np.ndarray
    """``pred − truth``"""
    climatology: np.ndarray
    """mean training field (baseline)"""
    sat_pred: np.ndarray
    """predicted SAT curtain at ``t + 1``, ``(n_sat, nx)``"""
    sat_truth: np.ndarray
    """observed ``ysat[t + 1]``"""
    in_training: bool
    """whether ``t`` was a training transition of this model (False: held out or other data)"""
    metrics: dict[str, float]
    """``rmse``, ``correlation``, ``rmse_climatology``, ``rmse_persistence``,
    ``correlation_persistence``, ``sat_rmse``, ``sat_rmse_persistence``"""


def reconstruct_field(model: TrainedObs2Obs, ds: ObsDataset, t: int) -> FieldReconstruction:
    """Evaluation 2: query every grid point → the full field at ``t + 1``.

    Inputs are the stored observations at ``t`` only (mode B). Baselines: the climatological
    mean field of the training snapshots, and persistence ``xtrue[t]`` (which the model does
    not see); for SAT, persistence ``ysat[t]``.
    """
    _check_compatible(model, ds)
    t = _check_transition(ds, t)
    ysat, rx, rz, ry = _stored_inputs(ds, t)
    x, z = np.asarray(ds.x, float), np.asarray(ds.z, float)
    nz, nx = z.size, x.size
    sat, q = model.predict(ysat, rx, rz, ry, np.tile(x, nz), np.repeat(z, nx))
    pred = q.reshape(nz, nx)
    truth, prev = np.asarray(ds.xtrue[t + 1], float), np.asarray(ds.xtrue[t], float)
    sat_truth = np.asarray(ds.ysat[t + 1], float)
    metrics = {
        "rmse": rmse(pred, truth), "correlation": correlation(pred, truth),
        "rmse_climatology": rmse(model.climatology, truth),
        "rmse_persistence": rmse(prev, truth), "correlation_persistence": correlation(prev, truth),
        "sat_rmse": rmse(sat, sat_truth), "sat_rmse_persistence": rmse(ysat, sat_truth),
    }
    return FieldReconstruction(t=t, pred=pred, truth=truth, previous=prev, difference=pred - truth,
                               climatology=model.climatology, sat_pred=sat, sat_truth=sat_truth,
                               in_training=bool(t in set(model.train_transitions.tolist())),
                               metrics=metrics)


def evaluate(model: TrainedObs2Obs, ds: ObsDataset, transitions: np.ndarray | None = None
             ) -> dict[str, float]:
    """Mean of the :func:`reconstruct_field` metrics over ``transitions`` (default: the
    model's test transitions, never used in training or early stopping; its validation
    transitions for a model trained without a test split)."""
    if transitions is None:
        ts = model.test_transitions if model.test_transitions.size else model.val_transitions
    else:
        ts = np.asarray(transitions)
    if ts.size == 0:
        raise ValueError("no transitions to evaluate")
    ms = [reconstruct_field(model, ds, int(t)).metrics for t in ts]
    return {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
