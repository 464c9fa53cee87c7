"""Toy atmosphere speed at the lecture grid (130 × 50), and how far it is from the machine."""

from __future__ import annotations

import numba
import numpy as np

from benchmarks import Row, best_of
from toyda import atmosphere as at
from toyda.integrate import rk4_step

# Floating-point operations per cell and RK4 step of the compiled scheme, counted from the
# kernel: per stage two face fluxes (3rd-order upwind + diffusion, 2 × 11), divergence,
# source and damping (8), stage combination (4); plus the final update (3).
FLOPS_PER_CELL_STEP = 4 * (22 + 8 + 4) + 3


@numba.njit(fastmath=True, cache=True)
def _fma_peak(n_rep):
    """Register-resident, independent, vectorised multiply-adds: one core's arithmetic peak."""
    acc = np.ones(64) * 0.5
    for _ in range(n_rep):
        for k in range(64):
            acc[k] = acc[k] * 0.999999 + 1e-7
    return acc.sum()


def rows() -> list[Row]:
    cfg = at.AtmosphereConfig()
    cells = cfg.nx * cfg.nz
    at.simulate(cfg, 10, 1)  # compile / load the cache
    n = 4000
    t = best_of(lambda: at.simulate(cfg, n, 10), repeat=3)
    steps_s = n / t

    amps = np.ones(1)
    f = lambda p, tt: at.tendency(p, at.forcing(cfg, np.array(tt), amps), cfg)  # noqa: E731
    phi = np.zeros((cfg.nz, cfg.nx))

    def numpy_run():
        p = phi
        for k in range(200):
            p = rk4_step(f, p, k * cfg.dt, cfg.dt)
    t_np = best_of(numpy_run, repeat=2)

    ens_members, ens_steps = 16, 1000
    t_ens = best_of(lambda: at.simulate(cfg, ens_steps, 1, n_members=ens_members), repeat=2)

    phi_ens = np.random.default_rng(0).random((20, cfg.nz, cfg.nx))
    at.forecast(cfg, phi_ens, 1)  # compile / load the cache
    interval = 25  # steps between snapshots of the training dataset (0.5 time units)
    t_fc = best_of(lambda: at.forecast(cfg, phi_ens, interval, t0=3.0), repeat=3)
    t_fc1 = best_of(lambda: at.forecast(cfg, phi_ens[0], 1000), repeat=3)

    _fma_peak(1)
    reps = 2_000_000
    t_peak = best_of(lambda: _fma_peak(reps), repeat=3)
    peak_flops = 2 * 64 * reps / t_peak
    achieved = steps_s * cells * FLOPS_PER_CELL_STEP
    return [
        Row("toyda.atmosphere", "RK4 steps per second, 130×50, one trajectory", steps_s, "steps/s",
            ">= 5000", steps_s >= 5000, f"compiled kernel; {n} steps incl. budget + snapshots"),
        Row("toyda.atmosphere", "cell updates per second", steps_s * cells, "cells/s", "", None,
            f"{FLOPS_PER_CELL_STEP} flop per cell-step → {achieved / 1e9:.1f} GFLOP/s"),
        Row("toyda.atmosphere", "fraction of one core's multiply-add peak", achieved / peak_flops, "ratio",
            "", None, f"vectorised FMA loop on this core: {peak_flops / 1e9:.1f} GFLOP/s; the stencil is load/store-bound"),
        Row("toyda.atmosphere", "plain numpy reference (same scheme)", 200 / t_np, "steps/s", "", None,
            "toyda.atmosphere.tendency + integrate.rk4_step"),
        Row("toyda.atmosphere", f"ensemble of {ens_members} trajectories", ens_members * ens_steps / t_ens,
            "member-steps/s", "", None, "simulate(): budget + snapshots, members in parallel (prange)"),
        Row("toyda.atmosphere", "20-member forecast over one observation interval", t_fc, "s",
            "< 0.1", t_fc < 0.1, f"atmosphere.forecast: {interval} RK4 steps, members in parallel (prange)"),
        Row("toyda.atmosphere", "RK4 steps per second, one member, no budget", 1000 / t_fc1, "steps/s",
            ">= 20000", 1000 / t_fc1 >= 20000, "atmosphere.forecast, 1000 steps"),
    ]
