"""Tools for the toy atmosphere and its observations."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from pydantic import Field

from tools import plots, words
from tools.base import Example, Prediction, RunContext, ToolArgs, ToolError, ToolSpec, arg
from tools.datasets import NC_NAME, NPZ_NAME, save_netcdf, save_npz
from toyda import atmosphere as at
from toyda import observations as ob

_D = at.AtmosphereConfig()
TRAINING_DATASET_DEFAULTS = ob.TRAINING_DATASET_DEFAULTS
"""the dataset size that train_obs2obs needs (a multi-step request generates this much)"""
SOURCE = {"x": _D.source_x, "z": _D.source_z, "sx": _D.source_sx, "sz": _D.source_sz}
"""where the source S(x, z) sits (domain units; the tools do not move it), for the figures"""


def source_on(cfg: at.AtmosphereConfig, t: np.ndarray) -> np.ndarray:
    """Whether the pulsed source is injecting at times ``t`` (A(t) above 5% of its peak)."""
    return at.forcing(cfg, np.asarray(t, dtype=float), np.ones(1)) > 0.05 * cfg.amplitude


def snapshot_steps(cfg: at.AtmosphereConfig, n_steps: int, n_snapshots: int) -> np.ndarray:
    """Snapshots evenly spread over the run, every other one moved to the middle of the nearest
    pulse, so that the figure shows the source both on and off (evenly spread snapshots can all
    fall at the same pulse phase, e.g. every 2 periods)."""
    steps = at.snapshot_steps(n_steps, n_snapshots)
    period, mid = cfg.pulse_period, 0.5 * cfg.pulse_duty * cfg.pulse_period
    for k in range(1, len(steps), 2):
        shift = (mid - steps[k] * cfg.dt + period / 2) % period - period / 2     # to the nearest mid-pulse
        moved = steps[k] + int(round(shift / cfg.dt))
        upper = steps[k + 1] if k + 1 < len(steps) else n_steps + 1
        if steps[k - 1] < moved < upper:
            steps[k] = moved
    return steps


class PhysicsArgs(ToolArgs):
    """The toy atmosphere's physical settings (shared by both tools)."""

    nx: int = arg(_D.nx, ge=16, le=400, description="grid columns along x (periodic)",
        phrases=("nx", "columns"))
    nz: int = arg(_D.nz, ge=10, le=200, description="grid levels along z",
        phrases=("nz",))
    dt: float = arg(_D.dt, gt=0, le=1.0, description="RK4 time step (model time units); must be stable",
        phrases=words.DT)
    u: float = arg(_D.u, ge=-5, le=5, description="mean horizontal wind (domain units per time unit; + is right)",
        phrases=("u", "mean wind", "horizontal wind", "wind speed", "wind"))
    w: float = arg(_D.w, ge=-2, le=2, description="mean vertical wind (domain units per time unit; + is up)",
        phrases=("w", "vertical wind", "updraft", "vertical velocity"))
    K: float = arg(_D.K, ge=0, le=0.5, description="diffusivity K (domain units² per time unit)",
        phrases=("k", "diffusivity", "diffusion", "diffusion coefficient", "kappa"))
    damping: float = arg(_D.damping, ge=0, le=5, description="linear damping rate λ (per time unit)",
        phrases=("damping", "damping rate", "lambda", "λ", "decay rate"))
    sponge: float = arg(_D.sponge, ge=0, le=20, description="top sponge rate λ_top at the lid (per time unit)",
        phrases=("sponge", "sponge rate", "sponge strength"))
    pulse_period: float = arg(_D.pulse_period, ge=0.1, le=50,
        description="period of the pulsed source A(t) (time units; at least 2 time steps)",
        phrases=("pulse period", "source period"))
    seed: int = arg(0, ge=0, le=2**31 - 1, description="random seed (pulse amplitudes, observation noise)",
        phrases=words.SEED)

    def check(self) -> at.AtmosphereConfig:
        """The configuration, after the checks that involve several arguments."""
        if self.pulse_period < 2 * self.dt:
            raise ToolError(f"pulse_period ({self.pulse_period:g}) must be at least two time steps (2·dt = "
                            f"{2 * self.dt:g}) so that each pulse is resolved: raise pulse_period or lower dt")
        cfg = self.config()
        at.check_stable(cfg)
        return cfg

    def config(self) -> at.AtmosphereConfig:
        # keep the domain spacing of the lecture grid (0.1 units) when the grid size changes
        return at.AtmosphereConfig(nx=self.nx, nz=self.nz, lx=self.nx * _D.dx, lz=self.nz * _D.dz,
                                   dt=self.dt, u=self.u, w=self.w, K=self.K, damping=self.damping,
                                   sponge=self.sponge, pulse_period=self.pulse_period)


class SimulateArgs(PhysicsArgs):
    n_steps: int = arg(2000, ge=1, le=100_000, description="number of RK4 time steps",
        phrases=words.TIME_STEPS)
    n_snapshots: int = arg(10, ge=1, le=100, description="number of snapshots saved, spread over the run "
                                                         "(every other one in mid-pulse, source on)",
        phrases=words.SNAPSHOTS)


def simulate_atmosphere(args: SimulateArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Run the 2D toy atmosphere of the lab: advection–diffusion of a tracer φ(x, z) with a
    pulsed bottom-left source, damping and a top sponge, periodic in x, integrated with RK4.

    Use it to show the dynamics (snapshots of the tracer train that leaves at the right and
    re-enters at the left) and to check the budget: content C(t), injected acc_in and lost
    acc_loss must balance (the residual should be tiny) and C(t) levels off at a statistical
    steady state. Unstable settings (Courant or diffusion number too large) are refused with
    the largest stable dt.
    """
    if args.n_snapshots > args.n_steps:
        raise ValueError(f"n_snapshots ({args.n_snapshots}) cannot exceed n_steps ({args.n_steps})")
    cfg = args.check()
    ctx.progress(0.0, f"integrating {args.n_steps} RK4 steps")
    sim = at.simulate(cfg, args.n_steps, steps=snapshot_steps(cfg, args.n_steps, args.n_snapshots), rng=args.seed)
    ctx.progress(0.8, "drawing figures")
    b = sim.budget
    stab = at.stability_numbers(cfg)
    ctx.save_figure(plots.atmosphere_snapshots(cfg.x, cfg.z, sim.snapshots, sim.t_snap, source=SOURCE,
                                               source_on=source_on(cfg, sim.t_snap)), "snapshots")
    ctx.save_figure(plots.budget(b.t, b.C, b.I, b.L, b.acc_in, b.acc_loss, cfg.pulse_period), "budget")
    np.savez_compressed(ctx.file("simulation.npz"), snapshots=sim.snapshots, t_snap=sim.t_snap, x=cfg.x,
                        z=cfg.z, t=b.t, C=b.C, I=b.I, L=b.L, acc_in=b.acc_in, acc_loss=b.acc_loss)
    last = max(1, len(b.C) // 5)
    drift = float((b.C[-1] - b.C[-last]) / max(abs(b.C[-1]), 1e-12))
    metrics = {
        "t_end": float(b.t[-1]), "C_final": float(b.C[-1]), "acc_in": float(b.acc_in[-1]),
        "acc_loss": float(b.acc_loss[-1]), "budget_residual": float(b.residual),
        "budget_residual_rel": float(b.relative_residual), "budget_residual_rk4": float(b.residual_rk4),
        "C_change_last_fifth_rel": drift, "phi_max": float(sim.snapshots.max()),
        "courant": stab["courant"], "diffusion_number": stab["diffusion_number"], "dt_max_stable": stab["dt_max"],
    }
    summary = (
        f"Ran {args.n_steps} RK4 steps (t = 0…{b.t[-1]:.1f}) on a {cfg.nx}×{cfg.nz} grid with u={cfg.u:g}, "
        f"w={cfg.w:g}, K={cfg.K:g} (Courant {stab['courant']:.2f}, stable up to dt={stab['dt_max']:.3g}). "
        f"Budget: injected {b.acc_in[-1]:.3f}, lost {b.acc_loss[-1]:.3f}, content change "
        f"{b.C[-1] - b.C[0]:.3f}: the residual is {100 * b.relative_residual:.3f}% of the injection. "
        f"Over the last fifth of the run C(t) changed by {100 * drift:+.1f}% "
        f"({'a statistical steady state' if abs(drift) < 0.1 else 'still spinning up'}). "
        f"The source is on in {int(source_on(cfg, sim.t_snap).sum())} of the {len(sim.t_snap)} snapshots."
    )
    return summary, metrics


class ObservationsArgs(PhysicsArgs):
    n_snapshots: int = arg(TRAINING_DATASET_DEFAULTS["n_snapshots"], ge=2, le=2000,
                           description="snapshots per trajectory (the lecture's notebook stores 10; the default is "
                                       "enough to train the obs2obs network on)",
        phrases=words.SNAPSHOTS)
    snapshot_every: int = arg(TRAINING_DATASET_DEFAULTS["snapshot_every"], ge=1, le=5000,
                              description="RK4 steps between two snapshots",
        phrases=("snapshot every", "every # steps", "snapshots every"))
    spinup_steps: int = arg(1000, ge=0, le=50_000, description="RK4 steps before the first snapshot (spin-up to steady state)",
        phrases=("spin-up", "spinup", "spin up", "spin-up steps"))
    n_trajectories: int = arg(TRAINING_DATASET_DEFAULTS["n_trajectories"], ge=1, le=64,
                              description="independent runs (different pulse amplitudes) stored one after another",
        phrases=("trajectories", "trajectory", "independent runs"))
    n_radiosondes: int = arg(7, ge=1, le=64, description="radiosonde stations (columns), spread evenly in x",
        phrases=("radiosondes", "radiosonde", "radio sondes", "sondes", "sonde", "stations", "radiosonde stations"))
    n_levels: int = arg(18, ge=1, le=200, description="radiosonde levels per profile",
        phrases=("levels", "vertical levels", "radiosonde levels", "levels per sonde", "levels per profile"))
    n_channels: int = arg(4, ge=1, le=16, description="satellite channels (Gaussian vertical weighting functions)",
        phrases=("channels", "satellite channels", "sat channels", "channel"))
    rs_noise: float = arg(0.02, ge=0, le=1, description="radiosonde observation-error standard deviation (units of φ)",
        phrases=("radiosonde noise", "rs noise", "sonde noise", "radiosonde error", "rs error"))
    sat_noise: float = arg(0.01, ge=0, le=1, description="satellite observation-error standard deviation (units of φ)",
        phrases=("satellite noise", "sat noise", "satellite error", "sat error"))


def observe(args: ObservationsArgs) -> ob.ObsDataset:
    """The dataset that ``args`` describe (stability and geometry checked first)."""
    cfg = args.check()
    if args.n_levels > cfg.nz:
        raise ValueError(f"n_levels ({args.n_levels}) cannot exceed nz ({cfg.nz})")
    if args.n_radiosondes > cfg.nx:
        raise ValueError(f"n_radiosondes ({args.n_radiosondes}) cannot exceed nx ({cfg.nx})")
    return ob.generate_dataset(
        cfg, n_snapshots=args.n_snapshots, snapshot_every=args.snapshot_every, spinup_steps=args.spinup_steps,
        n_trajectories=args.n_trajectories, n_radiosondes=args.n_radiosondes, n_levels=args.n_levels,
        n_channels=args.n_channels, rs_noise=args.rs_noise, sat_noise=args.sat_noise, rng=args.seed,
    )


def generate_observations(args: ObservationsArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Simulate the toy atmosphere and observe it with radiosondes (sparse vertical profiles
    at a few station columns) and satellite channels (Gaussian-weighted vertical means in
    every column). Saves the lab's dataset dyn_truth_obs.npz (keys xtrue, yrs, ysat, t_snap,
    rs_ix, rs_iz, sat_w, x, z) and a CF-style NetCDF copy.

    Use it before training the obs-to-obs network. The lecture's dataset has 10 snapshots;
    for training use many (e.g. n_trajectories=8, n_snapshots=60, snapshot_every=25) —
    train_obs2obs makes such a dataset itself when none is given.
    """
    ctx.progress(0.0, "simulating and observing")
    ds = observe(args)
    ctx.progress(0.7, "saving the dataset and drawing figures")
    save_npz(ds, ctx.file(NPZ_NAME))
    save_netcdf(ds, ctx.file(NC_NAME))
    first = slice(0, args.n_snapshots)  # figures show the first trajectory
    t0 = args.n_snapshots // 2
    on = source_on(args.config(), ds.t_snap[first])
    ctx.save_figure(plots.atmosphere_snapshots(ds.x, ds.z, ds.xtrue[first], ds.t_snap[first], ds.rs_ix, ds.rs_iz,
                                               source=SOURCE, source_on=on), "truth_with_stations")
    ctx.save_figure(plots.weighting_functions(ds.z, ds.sat_w), "sat_weights")
    ctx.save_figure(plots.satellite_curtain(ds.x, ds.ysat[t0], ds.t_snap[t0], t0, source=SOURCE), "sat_curtain")
    ctx.save_figure(plots.satellite_hovmoeller(ds.x, ds.t_snap[first], ds.ysat[first], source=SOURCE), "sat_time_x")
    ctx.save_figure(plots.radiosonde_profiles(ds.z, ds.rs_iz, ds.yrs[t0], ds.xtrue[t0][:, ds.rs_ix], ds.x[ds.rs_ix],
                                              ds.t_snap[t0], t0), "rs_profiles")
    rs_err = ds.yrs - ob.radiosonde_operator(ds.xtrue, ds.rs_ix, ds.rs_iz)
    metrics = {
        "n_snapshots_total": ds.n_snapshots, "n_transitions": len(ds.transitions()),
        "n_radiosonde_obs": int(ds.yrs.size), "n_satellite_obs": int(ds.ysat.size),
        "rs_noise_realised": float(rs_err.std()), "xtrue_mean": float(ds.xtrue.mean()),
        "xtrue_std": float(ds.xtrue.std()), "ysat_mean": float(ds.ysat.mean()),
    }
    summary = (
        f"Saved {NPZ_NAME}: xtrue {ds.xtrue.shape}, yrs {ds.yrs.shape}, ysat {ds.ysat.shape} "
        f"({args.n_trajectories} trajectory(ies) × {args.n_snapshots} snapshots every {args.snapshot_every} steps "
        f"after {args.spinup_steps} spin-up steps), {args.n_radiosondes} stations at columns "
        f"{list(map(int, ds.rs_ix))} with {args.n_levels} levels, {args.n_channels} satellite channels; "
        f"noise σ_rs={args.rs_noise:g}, σ_sat={args.sat_noise:g}. A CF NetCDF copy is {NC_NAME}."
    )
    return summary, metrics


def _explain_simulation(result: Any, question: str) -> str | None:
    """The simulation's own budget numbers for a question about them."""
    q = question.lower()
    m = result.metrics
    out = []
    if any(w in q for w in ("budget", "residual", "closed", "clos", "balance", "conserv")):
        rel = m["budget_residual_rel"]
        verdict = "Yes, the budget is closed" if rel < 1e-3 else "The budget is not closed"
        out.append(
            f"{verdict}: over the run the source injected {m['acc_in']:.4g}, damping and the sponge removed "
            f"{m['acc_loss']:.4g}, and the content ended at C = {m['C_final']:.4g}; the residual "
            f"C(t) − C(0) − (injected − lost) is {m['budget_residual']:.3g}, {100 * rel:.3g}% of the injection. "
            f"That residual comes from summing the fluxes with the rectangle rule; summed with the RK4 weights "
            f"it is {m['budget_residual_rk4']:.2g} (round-off), so the scheme itself conserves the tracer.")
    if any(w in q for w in ("steady", "equilibri", "level", "spin")):
        drift = m["C_change_last_fifth_rel"]
        out.append(f"Over the last fifth of the run C(t) changed by {100 * drift:+.1f}%: "
                   + ("a statistical steady state." if abs(drift) < 0.1 else "still spinning up."))
    return " ".join(out) or None


def _budget_closes(result: Any) -> tuple[str, str]:
    rel = result.metrics["budget_residual_rel"]
    return ("yes" if rel < 1e-3 else "no"), f"the budget residual came out {100 * rel:.3g}% of the injected tracer"


# ----------------------------------------------------------------------------- cost estimates

CELL_STEP_S = 4e-8
"""seconds per grid cell and RK4 step (measured 1.5–2e-8 s on one busy core of the 2-core class machine)"""
WRITE_BYTES_S = 5e7
"""bytes of snapshots compressed and written per second (npz + NetCDF)"""
FIGURE_S = 1.5
"""seconds to draw and save one figure on a busy machine"""
BASE_BYTES = 64 * 2**20
"""memory of drawing the figures and writing the files, whatever the size"""


def _run_bytes(n_members: int, n_steps: int, n_snaps: int, cells: int, pulses: float) -> float:
    """What ``toyda.atmosphere.simulate`` holds: snapshots (n, T, nz, nx), the half-step forcing
    (n, 2N+1), five budget series (n, N+1), the RK4 stages and the pulse amplitudes; 8 bytes each."""
    return 8.0 * (n_members * (n_snaps * cells + 8 * cells + 2 * n_steps + 1 + 5 * (n_steps + 1)) + n_members * pulses)


def simulate_cost(args: SimulateArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds) of a simulate_atmosphere run."""
    cells = args.nx * args.nz
    pulses = args.n_steps * args.dt / args.pulse_period + 1
    memory = BASE_BYTES + _run_bytes(1, args.n_steps, args.n_snapshots, cells, pulses) + 16.0 * args.n_snapshots * cells
    seconds = 2 * FIGURE_S + CELL_STEP_S * cells * args.n_steps + 8.0 * args.n_snapshots * cells / WRITE_BYTES_S
    return memory, seconds


def observations_cost(args: ObservationsArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds) of a generate_observations run: the simulation of every
    trajectory, then the snapshots copied about three times (observations, npz, NetCDF)."""
    cells = args.nx * args.nz
    steps = args.spinup_steps + args.snapshot_every * (args.n_snapshots - 1 + (args.spinup_steps == 0))
    pulses = steps * args.dt / args.pulse_period + 1
    snaps = args.n_trajectories * args.n_snapshots
    memory = BASE_BYTES + _run_bytes(args.n_trajectories, steps, args.n_snapshots, cells, pulses) + 24.0 * snaps * cells
    seconds = 5 * FIGURE_S + CELL_STEP_S * cells * steps * args.n_trajectories + 16.0 * snaps * cells / WRITE_BYTES_S
    return memory, seconds


_DURATION = re.compile(r"\b(?:for|over|during|up to|until|to)\s+(?:t\s*=\s*)?(\d+(?:\.\d+)?)\s*"
                       r"(?:model\s+)?(?:time\s+units?|units?\s+of\s+time|time\b|tu\b)")


def read_duration(text: str) -> dict[str, Any]:
    """A run length in model time ("for 20 time units") as ``n_steps`` at the time step given (or the
    default one); a length in steps is read from the ``n_steps`` phrases."""
    m = _DURATION.search(text.lower())
    if not m:
        return {}
    dt_said = re.search(r"\bdt\s*(?:=|of)?\s*(\d*\.\d+|\d+)", text.lower())
    dt = float(dt_said.group(1)) if dt_said else SimulateArgs.model_fields["dt"].default
    if not dt or dt <= 0:
        return {}
    return {"n_steps": max(1, round(float(m.group(1)) / dt))}

TOOLS = (
    ToolSpec(
        "simulate_atmosphere", simulate_atmosphere, SimulateArgs, cost=simulate_cost,
        keywords=((2, r"simul|toy atmosphere|atmos\w*|atmo\b|advection|budget|tracer|diffusion|advect|2d model"
                      r"|\bwind\b"),),
        topic="toy atmosphere budget",
        explain=_explain_simulation,
        predictions=(
            Prediction("The source injects tracer, damping and the sponge remove it. Will the budget close to better "
                       "than 0.1% of the injected amount (yes or no)?", ("yes", "no"), _budget_closes),
        ),
        hints=(
            "Write the budget: the change of content C(t) − C(0) should equal what was injected minus what was lost.",
            "Where can tracer leave the domain? Think of the damping term, the top sponge and the walls.",
            "Plot C(t), acc_in and acc_loss; the residual is the part no term explains. How does it change with dt?",
        ),
        figures=("snapshots", "budget"),
        examples=(
            Example("simulate the toy atmosphere", {}),
            Example("run the atmosphere for 3000 steps with dt 0.02", {"n_steps": 3000, "dt": 0.02}),
            Example("simulate the tracer with diffusivity 0.01", {"K": 0.01}),
            Example("simulate the toy atmosphere for 20 time units", {"n_steps": 1000}),
        ),
        read=read_duration,
    ),
    ToolSpec(
        "generate_observations", generate_observations, ObservationsArgs, cost=observations_cost,
        keywords=((3, r"generat\w* (?:the |some |new |synthetic |a )?(?:obs|data|measurements)"
                      r"|observations?\b(?!\s*(?:error|noise|operator|std|standard))|radiosondes?|\bsondes?\b"
                      r"|satellite|dataset|\bobs\b(?!\s*(?:error|noise|std))|synthetic data|channels"
                      r"|measurements|\bobserv(?:e|ing) (?:the )?(?:atmosphere|field|tracer)"),),
        topic="radiosondes satellite observations",
        figures=("truth_with_stations", "sat_weights", "sat_curtain", "sat_time_x", "rs_profiles"),
        examples=(
            Example("generate observations", {}),
            Example("make synthetic radiosonde and satellite observations with 5 radiosondes", {"n_radiosondes": 5}),
            Example("generate a dataset with 6 satellite channels", {"n_channels": 6}),
        ),
    ),
)
