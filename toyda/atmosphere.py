"""The 2D toy atmosphere of the lab: advection–diffusion with a pulsed source and damping.

.. math::

    \\partial_t \\phi = -u\\,\\partial_x \\phi - w\\,\\partial_z \\phi + K \\nabla^2 \\phi
                      + A(t) S(x, z) - \\lambda \\phi - \\lambda_{top}(z) \\phi

on ``[0, Lx) × [0, Lz]``, periodic in x (what leaves at the right re-enters at the left), no
flux through the bottom and the top (reflective walls) with a sponge layer under the top.
Time stepping is classical RK4.

Discretisation (cell centres ``x_i = (i + ½) dx``, ``z_j = (j + ½) dz``): the flux form
``∂_t φ = -∇·F + A S - (λ + λ_top) φ`` with ``F = (u, w) φ_face − K ∇φ``. Face values are
3rd-order upwind-biased, so the scheme is conservative: the fluxes cancel in the sum over all
cells and ``dC/dt = I − L`` holds exactly for the semi-discrete system. The budget uses the
lecture's definitions — ``C(t) = ∫ φ``, ``I(t) = ∫ A S``, ``L(t) = ∫ (λ + λ_top) φ`` and
the rectangle-rule sums ``acc_in = Σ I(t_n) Δt``, ``acc_loss = Σ L(t_n) Δt`` — plus the
same sums with the RK4 stage weights, which close ``C(T) − C(0) = acc_in − acc_loss`` to
round-off.

Units are nondimensional: lengths in domain units (grid spacing 0.1), times in model time
units. With the defaults the mean wind crosses the domain in 13 time units, a pulse period is
2 time units (so trace stripes are 2 units apart), and the damping e-folds in 12.5 units, so
the 2,000-step default run (40 time units) reaches a statistical steady state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toyda import _kernels

#: RK4's stability polynomial R(z) = 1 + z + z²/2 + z³/6 + z⁴/24.
_RK4 = np.array([1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0])


@dataclass(frozen=True)
class AtmosphereConfig:
    """Physical and numerical settings of the toy atmosphere (lecture defaults)."""

    nx: int = 130
    """number of grid columns (periodic direction)"""
    nz: int = 50
    """number of grid levels"""
    lx: float = 13.0
    """domain length in x (domain units)"""
    lz: float = 5.0
    """domain height in z (domain units)"""
    u: float = 1.0
    """mean horizontal wind (units per time unit; > 0 blows to the right)"""
    w: float = 0.12
    """mean vertical wind (units per time unit; > 0 is upward)"""
    K: float = 0.003
    """diffusivity (units² per time unit)"""
    damping: float = 0.08
    """uniform linear damping λ (per time unit)"""
    sponge: float = 1.5
    """maximum sponge rate λ_top at the top (per time unit)"""
    sponge_depth: float = 1.0
    """thickness of the sponge layer under the top (domain units)"""
    source_x: float = 1.3
    """x of the source centre (bottom-left)"""
    source_z: float = 0.7
    """z of the source centre"""
    source_sx: float = 0.25
    """Gaussian half-width of the source in x"""
    source_sz: float = 0.45
    """Gaussian half-width of the source in z"""
    amplitude: float = 3.0
    """mean forcing amplitude A₀ (content per area per time unit at the source peak)"""
    pulse_period: float = 2.0
    """period of the pulsed forcing A(t) (time units)"""
    pulse_duty: float = 0.4
    """fraction of each period during which the source is on"""
    pulse_jitter: float = 0.5
    """random relative spread of each pulse's amplitude (0 = identical pulses)"""
    dt: float = 0.02
    """time step (time units)"""

    def __post_init__(self) -> None:
        for name in ("nx", "nz"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 8:
                raise ValueError(f"{name} must be an integer >= 8, got {value!r}")
        positive = ("lx", "lz", "dt", "pulse_period", "source_sx", "source_sz")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("K", "damping", "sponge", "sponge_depth", "amplitude"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.pulse_duty <= 1:
            raise ValueError(f"pulse_duty must be in (0, 1], got {self.pulse_duty!r}")
        if not 0 <= self.pulse_jitter < 1:
            raise ValueError(f"pulse_jitter must be in [0, 1), got {self.pulse_jitter!r}")
        for name in ("u", "w"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}")

    @property
    def dx(self) -> float:
        return self.lx / self.nx

    @property
    def dz(self) -> float:
        return self.lz / self.nz

    @property
    def x(self) -> np.ndarray:
        """Cell-centre x coordinates, shape ``(nx,)``."""
        return (np.arange(self.nx) + 0.5) * self.dx

    @property
    def z(self) -> np.ndarray:
        """Cell-centre z coordinates, shape ``(nz,)``."""
        return (np.arange(self.nz) + 0.5) * self.dz


def source(cfg: AtmosphereConfig) -> np.ndarray:
    """The localised source ``S(x, z)``: a Gaussian near the bottom-left, peak 1, ``(nz, nx)``.

    The x-distance is periodic so a source near the left edge wraps smoothly.
    """
    dxp = (cfg.x - cfg.source_x + cfg.lx / 2) % cfg.lx - cfg.lx / 2
    gx = np.exp(-0.5 * (dxp / cfg.source_sx) ** 2)
    gz = np.exp(-0.5 * ((cfg.z - cfg.source_z) / cfg.source_sz) ** 2)
    return np.outer(gz, gx)


def sponge_profile(cfg: AtmosphereConfig) -> np.ndarray:
    """``λ + λ_top(z)`` per level, shape ``(nz,)``: uniform damping plus a quadratic sponge ramp."""
    z0 = cfg.lz - cfg.sponge_depth
    ramp = np.clip((cfg.z - z0) / max(cfg.sponge_depth, 1e-300), 0.0, 1.0) if cfg.sponge_depth > 0 \
        else np.zeros(cfg.nz)
    return cfg.damping + cfg.sponge * ramp**2


def pulse_amplitudes(cfg: AtmosphereConfig, n_pulses: int, rng: np.random.Generator) -> np.ndarray:
    """Relative amplitude of each pulse, ``1 + jitter·U(−1, 1)``, shape ``(n_pulses,)``."""
    return 1.0 + cfg.pulse_jitter * rng.uniform(-1.0, 1.0, size=n_pulses)


def forcing(cfg: AtmosphereConfig, t: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
    """The pulsed forcing ``A(t)``: a smooth sin² pulse at the start of each period.

    Parameters
    ----------
    t : ndarray
        Times (any shape).
    amplitudes : ndarray, shape ``(n_pulses,)``
        Relative amplitude of each pulse (see :func:`pulse_amplitudes`); pulse ``j`` covers
        ``[j P, (j + 1) P)``. Times beyond the last pulse reuse the amplitudes cyclically.
    """
    t = np.asarray(t, dtype=float)
    j = np.floor(t / cfg.pulse_period).astype(int)
    tau = t - j * cfg.pulse_period
    on = cfg.pulse_duty * cfg.pulse_period
    shape = np.where(tau < on, np.sin(np.pi * np.clip(tau, 0.0, on) / on) ** 2, 0.0)
    return cfg.amplitude * amplitudes[j % len(amplitudes)] * shape


def tendency(phi: np.ndarray, a: float | np.ndarray, cfg: AtmosphereConfig) -> np.ndarray:
    """The right-hand side ``RHS(φ, t)`` in plain numpy, vectorised over leading axes.

    This is the readable reference of the scheme that :func:`simulate` runs compiled.

    Parameters
    ----------
    phi : ndarray, shape ``(..., nz, nx)``
        Field(s).
    a : float or ndarray broadcastable to ``phi.shape[:-2]``
        Forcing amplitude ``A(t)`` (per member).
    cfg : AtmosphereConfig

    Returns
    -------
    ndarray, shape of ``phi``
        ``−∇·F + A S − (λ + λ_top) φ``.
    """
    dx, dz, K = cfg.dx, cfg.dz, cfg.K
    # x faces i-1/2 (between cells i-1 and i), periodic.
    left = np.roll(phi, 1, axis=-1)
    if cfg.u >= 0:
        face = (-np.roll(phi, 2, axis=-1) + 5.0 * left + 2.0 * phi) / 6.0
    else:
        face = (-np.roll(phi, -1, axis=-1) + 5.0 * phi + 2.0 * left) / 6.0
    fx = cfg.u * face - K * (phi - left) / dx
    div = (np.roll(fx, -1, axis=-1) - fx) / dx
    # z faces j+1/2 for j = 0..nz-2; zero flux through bottom and top (mirror ghosts).
    lo, c, hi = phi[..., :-1, :], phi[..., :-1, :], phi[..., 1:, :]
    if cfg.w >= 0:
        below = np.concatenate([phi[..., :1, :], phi[..., :-2, :]], axis=-2)
        fz_in = cfg.w * (-below + 5.0 * c + 2.0 * hi) / 6.0
    else:
        above = np.concatenate([phi[..., 2:, :], phi[..., -1:, :]], axis=-2)
        fz_in = cfg.w * (-above + 5.0 * hi + 2.0 * lo) / 6.0
    fz_in = fz_in - K * (hi - c) / dz
    zeros = np.zeros_like(phi[..., :1, :])
    fz = np.concatenate([zeros, fz_in, zeros], axis=-2)
    div = div + (fz[..., 1:, :] - fz[..., :-1, :]) / dz
    a = np.asarray(a, dtype=float)[..., None, None]
    return -div + a * source(cfg) - sponge_profile(cfg)[:, None] * phi


def amplification(cfg: AtmosphereConfig, dt: float | None = None, n_modes: int = 48) -> float:
    """Largest RK4 amplification factor ``max |R(dt λ)|`` over Fourier modes (von Neumann).

    ``λ`` is the symbol of the discretised advection–diffusion–damping operator for wave
    numbers ``θx, θz ∈ [0, π]`` (walls treated as periodic for the analysis), at the weakest
    and the strongest damping. A value above 1 means the run would grow without bound.
    """
    dt = cfg.dt if dt is None else dt
    theta = np.linspace(0.0, np.pi, n_modes)

    def adv(c: float, h: float) -> np.ndarray:
        e = np.exp(-1j * theta)
        return -(abs(c) / h) * (1 - e) * (2 / e + 5 - e) / 6.0

    def dif(h: float) -> np.ndarray:
        return -4.0 * cfg.K / h**2 * np.sin(theta / 2) ** 2

    sx = adv(cfg.u, cfg.dx) + dif(cfg.dx)
    sz = adv(cfg.w, cfg.dz) + dif(cfg.dz)
    lam = sponge_profile(cfg)
    damp = np.array([lam.min(), lam.max()])
    z = dt * (sx[:, None, None] + sz[None, :, None] - damp[None, None, :])
    return float(np.abs(np.polyval(_RK4, z)).max())


def stability_numbers(cfg: AtmosphereConfig, dt: float | None = None) -> dict[str, float]:
    """Courant and diffusion numbers, the RK4 amplification and the largest stable step."""
    dt = cfg.dt if dt is None else dt
    lo, hi = 0.0, dt
    while amplification(cfg, hi) <= 1.0 + 1e-12 and hi < 1e6:
        lo, hi = hi, 2.0 * hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if amplification(cfg, mid) <= 1.0 + 1e-12 else (lo, mid)
    return {
        "courant": abs(cfg.u) * dt / cfg.dx + abs(cfg.w) * dt / cfg.dz,
        "diffusion_number": cfg.K * dt * (1 / cfg.dx**2 + 1 / cfg.dz**2),
        "amplification": amplification(cfg, dt),
        "dt_max": lo,
    }


def check_stable(cfg: AtmosphereConfig) -> None:
    """Raise ``ValueError`` with the numbers if ``cfg.dt`` would be unstable."""
    s = stability_numbers(cfg)
    if s["amplification"] > 1.0 + 1e-12:
        raise ValueError(
            f"unstable settings: dt={cfg.dt:g} with u={cfg.u:g}, w={cfg.w:g}, K={cfg.K:g} gives an "
            f"advective Courant number |u|dt/dx+|w|dt/dz = {s['courant']:.3g} and a diffusion number "
            f"K dt (1/dx²+1/dz²) = {s['diffusion_number']:.3g}; RK4 would amplify some modes by "
            f"{s['amplification']:.4f} per step (must be <= 1). The largest stable dt for these "
            f"settings is {s['dt_max']:.3g}: choose dt <= {0.95 * s['dt_max']:.3g}, or weaker wind "
            f"or diffusivity."
        )


@dataclass(frozen=True)
class Budget:
    """Content budget of a run, one value per step ``n = 0 … n_steps`` (leading member axis
    for ensembles).

    ``acc_in``/``acc_loss`` are the lecture's rectangle-rule sums up to (not including) step
    n; ``acc_in_rk4``/``acc_loss_rk4`` weight the RK4 stages like the time stepper does.
    """

    t: np.ndarray
    C: np.ndarray
    I: np.ndarray  # noqa: E741 — the lecture's name
    L: np.ndarray
    acc_in: np.ndarray
    acc_loss: np.ndarray
    acc_in_rk4: np.ndarray
    acc_loss_rk4: np.ndarray

    @property
    def residual(self) -> np.ndarray:
        """``C(T) − C(0) − (acc_in − acc_loss)`` with the lecture's sums (time-discretisation error)."""
        return self.C[..., -1] - self.C[..., 0] - (self.acc_in[..., -1] - self.acc_loss[..., -1])

    @property
    def residual_rk4(self) -> np.ndarray:
        """The same with the RK4-weighted sums: zero up to round-off for a conservative scheme."""
        return self.C[..., -1] - self.C[..., 0] - (self.acc_in_rk4[..., -1] - self.acc_loss_rk4[..., -1])

    @property
    def relative_residual(self) -> np.ndarray:
        """``|residual| / acc_in``: the lecture's closure check (small is good)."""
        return np.abs(self.residual) / np.maximum(self.acc_in[..., -1], 1e-300)


@dataclass(frozen=True)
class Simulation:
    """A toy-atmosphere run: snapshots, their times, the grid and the budget."""

    config: AtmosphereConfig
    snapshots: np.ndarray
    """``(T, nz, nx)``, or ``(N, T, nz, nx)`` for an ensemble"""
    t_snap: np.ndarray
    """snapshot times, ``(T,)``"""
    snap_steps: np.ndarray
    """snapshot step indices, ``(T,)``"""
    budget: Budget
    final: np.ndarray
    """the field at the last step, ``(nz, nx)`` or ``(N, nz, nx)``"""
    amplitudes: np.ndarray = field(repr=False)
    """relative pulse amplitudes used, ``(n_pulses,)`` or ``(N, n_pulses)``"""

    @property
    def x(self) -> np.ndarray:
        return self.config.x

    @property
    def z(self) -> np.ndarray:
        return self.config.z


def snapshot_steps(n_steps: int, n_snapshots: int, start: int | None = None) -> np.ndarray:
    """``n_snapshots`` step indices evenly spread over ``(start, n_steps]``.

    By default ``start = 0`` is excluded so the (empty) initial state is not a snapshot.
    """
    if n_snapshots < 1 or n_snapshots > n_steps:
        raise ValueError(f"n_snapshots must be between 1 and n_steps={n_steps}, got {n_snapshots}")
    start = 0 if start is None else start
    if not 0 <= start < n_steps:
        raise ValueError(f"start must be in [0, n_steps), got {start}")
    span = n_steps - start
    return start + np.round(np.arange(1, n_snapshots + 1) * span / n_snapshots).astype(np.int64)


def simulate(
    cfg: AtmosphereConfig = AtmosphereConfig(),
    n_steps: int = 2000,
    n_snapshots: int = 10,
    *,
    steps: np.ndarray | None = None,
    phi0: np.ndarray | None = None,
    n_members: int | None = None,
    rng: np.random.Generator | int | None = 0,
) -> Simulation:
    """Run the toy atmosphere with RK4 and monitor its budget.

    Parameters
    ----------
    cfg : AtmosphereConfig
        Settings; ``cfg.dt`` is checked for stability first (``ValueError`` if unstable).
    n_steps : int
        Number of RK4 steps (``>= 1``).
    n_snapshots : int
        Number of snapshots, evenly spread over the run (ignored when ``steps`` is given).
    steps : ndarray of int, optional
        Explicit, strictly increasing snapshot step indices in ``[0, n_steps]``.
    phi0 : ndarray, optional
        Initial field ``(nz, nx)`` (or ``(N, nz, nx)`` for an ensemble). Default: zero.
    n_members : int, optional
        Run an ensemble of ``n_members`` trajectories with independent pulse amplitudes
        (one compiled loop; outputs gain a leading member axis).
    rng : Generator or int
        Randomness for the pulse amplitudes.

    Returns
    -------
    Simulation
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    check_stable(cfg)
    rng = np.random.default_rng(rng)
    ensemble = n_members is not None
    n = 1 if n_members is None else int(n_members)
    if n < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members!r}")
    if steps is None:
        steps = snapshot_steps(n_steps, n_snapshots)
    steps = np.asarray(steps, dtype=np.int64)
    if steps.ndim != 1 or steps.size == 0 or np.any(np.diff(steps) <= 0) or steps[0] < 0 \
            or steps[-1] > n_steps:
        raise ValueError(f"steps must be strictly increasing integers in [0, {n_steps}], got {steps}")

    shape = (cfg.nz, cfg.nx)
    if phi0 is None:
        start = np.zeros((n, *shape))
    else:
        start = np.asarray(phi0, dtype=float)
        if start.shape == shape:
            start = np.broadcast_to(start, (n, *shape))
        if start.shape != (n, *shape):
            raise ValueError(f"phi0 must have shape {shape} or {(n, *shape)}, got {np.shape(phi0)}")
        if not np.all(np.isfinite(start)):
            raise ValueError("phi0 must be finite (no NaN or inf)")
    start = np.ascontiguousarray(start)

    t_half = 0.5 * cfg.dt * np.arange(2 * n_steps + 1)
    n_pulses = int(np.floor(t_half[-1] / cfg.pulse_period)) + 1
    amps = np.stack([pulse_amplitudes(cfg, n_pulses, rng) for _ in range(n)])
    A = np.stack([forcing(cfg, t_half, a) for a in amps])

    T = steps.size
    snaps = np.empty((n, T, *shape))
    C, I, L = (np.empty((n, n_steps + 1)) for _ in range(3))
    in_rk4, loss_rk4 = np.zeros((n, n_steps + 1)), np.zeros((n, n_steps + 1))
    final = np.empty((n, *shape))
    _kernels.rk4_run(start, n_steps, cfg.dt, A, source(cfg), sponge_profile(cfg), cfg.u, cfg.w,
                     cfg.K, cfg.dx, cfg.dz, steps, snaps, C, I, L, in_rk4, loss_rk4, final)
    if not np.all(np.isfinite(snaps)) or not np.all(np.isfinite(C)):
        raise FloatingPointError("the run produced non-finite values; reduce dt")

    def cumulative(rate: np.ndarray) -> np.ndarray:
        out = np.zeros_like(rate)
        out[:, 1:] = np.cumsum(rate[:, :-1], axis=1)
        return out

    budget = Budget(
        t=cfg.dt * np.arange(n_steps + 1), C=C, I=I, L=L,
        acc_in=cumulative(I * cfg.dt), acc_loss=cumulative(L * cfg.dt),
        acc_in_rk4=cumulative(in_rk4), acc_loss_rk4=cumulative(loss_rk4),
    )
    if not ensemble:
        budget = Budget(t=budget.t, **{k: getattr(budget, k)[0] for k in
                                       ("C", "I", "L", "acc_in", "acc_loss", "acc_in_rk4", "acc_loss_rk4")})
        return Simulation(cfg, snaps[0], steps * cfg.dt, steps, budget, final[0], amps[0])
    return Simulation(cfg, snaps, steps * cfg.dt, steps, budget, final, amps)


def forecast(cfg: AtmosphereConfig, phi0: np.ndarray, n_steps: int, t0: float = 0.0,
             strength: np.ndarray | float = 1.0, amplitudes: np.ndarray | None = None) -> np.ndarray:
    """Advance an ensemble ``n_steps`` RK4 steps in one compiled call, members in parallel.

    No budget and no snapshots: the forecast step of ensemble data assimilation.

    Parameters
    ----------
    cfg : AtmosphereConfig
    phi0 : ndarray, shape ``(N, nz, nx)`` (or ``(nz, nx)`` for one field)
        Initial fields at time ``t0``.
    n_steps : int
        Number of RK4 steps of ``cfg.dt`` (``>= 0``).
    t0 : float
        Start time (sets the phase of the pulsed forcing).
    strength : float or ndarray, shape ``(N,)``
        Per-member factor on the source strength (1 = the configured amplitude).
    amplitudes : ndarray, optional
        Relative pulse amplitudes (see :func:`pulse_amplitudes`); default all ones.

    Returns
    -------
    ndarray, shape of ``phi0``
        Fields at ``t0 + n_steps·dt``.
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
    phi = np.array(phi0, dtype=float, copy=True)
    single = phi.ndim == 2
    phi = phi[None] if single else phi
    if phi.ndim != 3 or phi.shape[1:] != (cfg.nz, cfg.nx):
        raise ValueError(f"phi0 must have shape (N, {cfg.nz}, {cfg.nx}), got {np.shape(phi0)}")
    n = phi.shape[0]
    strength = np.broadcast_to(np.asarray(strength, dtype=float), (n,))
    t_half = t0 + 0.5 * cfg.dt * np.arange(2 * n_steps + 1)
    if amplitudes is None:
        amplitudes = np.ones(int(np.floor(t_half[-1] / cfg.pulse_period)) + 1)
    A = np.ascontiguousarray(strength[:, None] * forcing(cfg, t_half, amplitudes)[None, :])
    _kernels.rk4_ensemble(phi, int(n_steps), cfg.dt, A, source(cfg), sponge_profile(cfg),
                          cfg.u, cfg.w, cfg.K, cfg.dx, cfg.dz)
    return phi[0] if single else phi
