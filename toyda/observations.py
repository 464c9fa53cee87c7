"""Observations of the toy atmosphere: radiosondes, satellite channels, and the lab's dataset.

Radiosondes (sparse vertical profiles at a few station columns)::

    y_rs(s, k) = φ(x_s, z_k) + ε,     stations rs_ix (n_rs,), levels rs_iz (n_vert,)

Satellite channels (vertically integrated, every column)::

    y_sat(c, x_i) = Σ_j w_c(z_j) φ(x_i, z_j) Δz + ε,     Gaussian weights sat_w (n_sat, nz)

The weights are normalised so that Σ_j w_c(z_j) Δz = 1: each channel is a weighted vertical
mean, and many different profiles give the same channel value (an ill-posed inverse problem).

The dataset (``ObsDataset``) holds exactly the arrays of the lecture's ``dyn_truth_obs.npz``:
``xtrue (T, nz, nx)``, ``yrs (T, n_rs, n_vert)``, ``ysat (T, n_sat, nx)``, ``t_snap (T,)``,
``rs_ix (n_rs,)``, ``rs_iz (n_vert,)``, ``sat_w (n_sat, nz)``, ``x (nx,)``, ``z (nz,)``, plus
``traj (T,)``: which trajectory each snapshot belongs to (all zeros for a single run), so
that datasets of many trajectories never pair snapshots across two runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toyda.atmosphere import AtmosphereConfig, simulate

KEYS = ("xtrue", "yrs", "ysat", "t_snap", "rs_ix", "rs_iz", "sat_w", "x", "z")


def _index_array(name: str, idx: np.ndarray, size: int) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-D integer array, got {idx!r}")
    if idx.min() < 0 or idx.max() >= size:
        raise ValueError(f"{name} must index into 0..{size - 1}, got values {idx.min()}..{idx.max()}")
    return idx


def radiosonde_operator(field: np.ndarray, rs_ix: np.ndarray, rs_iz: np.ndarray) -> np.ndarray:
    """``H_rs φ``: the field at station columns and levels.

    Parameters
    ----------
    field : ndarray, shape ``(..., nz, nx)``
    rs_ix : int array ``(n_rs,)``; rs_iz : int array ``(n_vert,)``

    Returns
    -------
    ndarray, shape ``(..., n_rs, n_vert)``
    """
    field = np.asarray(field)
    if field.ndim < 2:
        raise ValueError(f"field must have shape (..., nz, nx), got {field.shape}")
    nz, nx = field.shape[-2:]
    rs_ix = _index_array("rs_ix", rs_ix, nx)
    rs_iz = _index_array("rs_iz", rs_iz, nz)
    return field[..., rs_iz[None, :], rs_ix[:, None]]


def radiosonde_adjoint(y: np.ndarray, rs_ix: np.ndarray, rs_iz: np.ndarray, nz: int, nx: int) -> np.ndarray:
    """``H_rsᵀ y``: scatter profile values back onto an ``(..., nz, nx)`` grid (adds repeats)."""
    y = np.asarray(y, dtype=float)
    rs_ix = _index_array("rs_ix", rs_ix, nx)
    rs_iz = _index_array("rs_iz", rs_iz, nz)
    if y.shape[-2:] != (rs_ix.size, rs_iz.size):
        raise ValueError(f"y must end in (n_rs, n_vert) = {(rs_ix.size, rs_iz.size)}, got {y.shape}")
    out = np.zeros((*y.shape[:-2], nz, nx))
    jj = np.broadcast_to(rs_iz[None, :], y.shape[-2:])
    ii = np.broadcast_to(rs_ix[:, None], y.shape[-2:])
    np.add.at(out, (..., jj, ii), y)
    return out


def satellite_weights(z: np.ndarray, n_channels: int = 4, width: float | None = None,
                      centres: np.ndarray | None = None) -> np.ndarray:
    """Gaussian vertical weighting functions ``w_c(z)``, shape ``(n_channels, nz)``.

    Channel peaks are spread evenly through the column (lowest to highest), each with
    half-width ``width`` (default: the spacing between peaks), and normalised to
    ``Σ_j w_c(z_j) Δz = 1``.
    """
    z = np.asarray(z, dtype=float)
    if z.ndim != 1 or z.size < 2:
        raise ValueError("z must be a 1-D array of at least two levels")
    if not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise ValueError(f"n_channels must be an integer >= 1, got {n_channels!r}")
    dz = z[1] - z[0]
    top = z[-1] + dz / 2
    if centres is None:
        centres = (np.arange(n_channels) + 0.5) * top / n_channels
    centres = np.asarray(centres, dtype=float)
    if width is None:
        width = top / n_channels
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    w = np.exp(-0.5 * ((z[None, :] - centres[:, None]) / width) ** 2)
    return w / (w.sum(axis=1, keepdims=True) * dz)


def satellite_operator(field: np.ndarray, sat_w: np.ndarray, dz: float) -> np.ndarray:
    """``H_sat φ``: ``y(c, x_i) = Σ_j w_c(z_j) φ(x_i, z_j) Δz``, shape ``(..., n_sat, nx)``."""
    field = np.asarray(field, dtype=float)
    sat_w = np.asarray(sat_w, dtype=float)
    if field.ndim < 2 or sat_w.ndim != 2 or sat_w.shape[1] != field.shape[-2]:
        raise ValueError(f"sat_w must have shape (n_sat, nz={field.shape[-2] if field.ndim >= 2 else '?'}) "
                         f"matching field (..., nz, nx); got sat_w {sat_w.shape}, field {field.shape}")
    return np.einsum("cj,...ji->...ci", sat_w, field) * dz


def satellite_adjoint(y: np.ndarray, sat_w: np.ndarray, dz: float) -> np.ndarray:
    """``H_satᵀ y``, shape ``(..., nz, nx)``."""
    return np.einsum("cj,...ci->...ji", np.asarray(sat_w, float), np.asarray(y, float)) * dz


def default_stations(nx: int, n_radiosondes: int = 7) -> np.ndarray:
    """Station columns spread evenly along x, offset so column 0 and the midpoints stay free."""
    if not isinstance(n_radiosondes, (int, np.integer)) or not 1 <= n_radiosondes <= nx:
        raise ValueError(f"n_radiosondes must be an integer in 1..{nx}, got {n_radiosondes!r}")
    return np.round((np.arange(n_radiosondes) + 0.5) * nx / n_radiosondes).astype(np.int64) % nx


def default_levels(nz: int, n_levels: int = 18) -> np.ndarray:
    """``n_levels`` distinct levels evenly spread from bottom to top."""
    if not isinstance(n_levels, (int, np.integer)) or not 1 <= n_levels <= nz:
        raise ValueError(f"n_levels must be an integer in 1..{nz}, got {n_levels!r}")
    return np.round(np.linspace(0, nz - 1, n_levels)).astype(np.int64)


@dataclass(frozen=True)
class ObsDataset:
    """Truth snapshots and both observation types, as stored in ``dyn_truth_obs.npz``."""

    xtrue: np.ndarray
    yrs: np.ndarray
    ysat: np.ndarray
    t_snap: np.ndarray
    rs_ix: np.ndarray
    rs_iz: np.ndarray
    sat_w: np.ndarray
    x: np.ndarray
    z: np.ndarray
    traj: np.ndarray | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.xtrue) != 3:
            raise ValueError(f"xtrue must have shape (T, nz, nx), got {np.shape(self.xtrue)}")
        T, nz, nx = self.xtrue.shape
        n_rs, n_vert, n_sat = len(self.rs_ix), len(self.rs_iz), np.shape(self.sat_w)[0]
        expected = {"yrs": (T, n_rs, n_vert), "ysat": (T, n_sat, nx), "t_snap": (T,),
                    "sat_w": (n_sat, nz), "x": (nx,), "z": (nz,)}
        for key, shape in expected.items():
            if np.shape(getattr(self, key)) != shape:
                raise ValueError(f"{key} must have shape {shape} to match xtrue {self.xtrue.shape}, "
                                 f"got {np.shape(getattr(self, key))}")
        _index_array("rs_ix", self.rs_ix, nx)
        _index_array("rs_iz", self.rs_iz, nz)
        if self.traj is None:
            object.__setattr__(self, "traj", np.zeros(T, dtype=np.int64))
        elif np.shape(self.traj) != (T,):
            raise ValueError(f"traj must have shape ({T},), got {np.shape(self.traj)}")

    @property
    def n_snapshots(self) -> int:
        return self.xtrue.shape[0]

    @property
    def dz(self) -> float:
        return float(self.z[1] - self.z[0])

    def transitions(self) -> np.ndarray:
        """Indices ``t`` such that ``(t, t + 1)`` are consecutive snapshots of one trajectory."""
        t = np.arange(self.n_snapshots - 1)
        return t[self.traj[:-1] == self.traj[1:]]

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The arrays by their lecture names (plus ``traj``), e.g. for ``np.savez``."""
        return {k: np.asarray(getattr(self, k)) for k in (*KEYS, "traj")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ObsDataset":
        """Build from a mapping with the lecture keys (``traj`` optional); checks shapes."""
        missing = [k for k in KEYS if k not in arrays]
        if missing:
            raise ValueError(f"dataset is missing {missing}; a dyn_truth_obs dataset has {list(KEYS)}")
        kw = {k: np.asarray(arrays[k]) for k in KEYS}
        traj = arrays.get("traj")
        return cls(**kw, traj=None if traj is None else np.asarray(traj))


TRAINING_DATASET_DEFAULTS = dict(n_trajectories=8, n_snapshots=60, snapshot_every=25)
"""``generate_dataset`` settings that give enough transitions to learn from: 8 trajectories ×
59 transitions = 472 pairs, 0.5 time units apart (about 2 s to generate). The lecture's
10-snapshot dataset (9 transitions) is far too small to train this obs-to-obs network."""


def generate_dataset(
    cfg: AtmosphereConfig = AtmosphereConfig(),
    *,
    n_snapshots: int = 10,
    snapshot_every: int = 50,
    spinup_steps: int = 1000,
    n_trajectories: int = 1,
    n_radiosondes: int = 7,
    n_levels: int = 18,
    n_channels: int = 4,
    rs_noise: float = 0.02,
    sat_noise: float = 0.01,
    rng: np.random.Generator | int | None = 0,
) -> ObsDataset:
    """Simulate the toy atmosphere and observe it: the lab's dataset.

    Each trajectory is spun up for ``spinup_steps`` (to the statistical steady state), then
    ``n_snapshots`` snapshots are taken every ``snapshot_every`` steps. Trajectories differ in
    their random pulse amplitudes; they are concatenated along time with ``traj`` marking them.

    Returns
    -------
    ObsDataset
        ``xtrue (M·T, nz, nx)``, ``yrs (M·T, n_rs, n_vert)``, ``ysat (M·T, n_sat, nx)``, ...
    """
    for name, value, low in (("n_snapshots", n_snapshots, 1), ("snapshot_every", snapshot_every, 1),
                             ("spinup_steps", spinup_steps, 0), ("n_trajectories", n_trajectories, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, value in (("rs_noise", rs_noise), ("sat_noise", sat_noise)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0 (a standard deviation), got {value!r}")
    rng = np.random.default_rng(rng)
    rs_ix = default_stations(cfg.nx, n_radiosondes)
    rs_iz = default_levels(cfg.nz, n_levels)
    sat_w = satellite_weights(cfg.z, n_channels)
    steps = spinup_steps + snapshot_every * np.arange(n_snapshots)
    if spinup_steps == 0:
        steps = steps + snapshot_every  # the zero initial state is not a useful snapshot
    sim = simulate(cfg, int(steps[-1]), steps=steps, n_members=n_trajectories, rng=rng)
    xtrue = sim.snapshots.reshape(-1, cfg.nz, cfg.nx)
    yrs = radiosonde_operator(xtrue, rs_ix, rs_iz) + rs_noise * rng.standard_normal(
        (xtrue.shape[0], rs_ix.size, rs_iz.size))
    ysat = satellite_operator(xtrue, sat_w, cfg.dz) + sat_noise * rng.standard_normal(
        (xtrue.shape[0], n_channels, cfg.nx))
    return ObsDataset(
        xtrue=xtrue, yrs=yrs, ysat=ysat, t_snap=np.tile(sim.t_snap, n_trajectories),
        rs_ix=rs_ix, rs_iz=rs_iz, sat_w=sat_w, x=cfg.x, z=cfg.z,
        traj=np.repeat(np.arange(n_trajectories), n_snapshots),
    )
