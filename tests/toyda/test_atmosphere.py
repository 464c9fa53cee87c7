"""The toy atmosphere: RK4 order, periodic wrap, budget closure, steady state, stability."""

from dataclasses import replace

import numpy as np
import pytest

from toyda import _kernels
from toyda import atmosphere as at
from toyda.integrate import rk4_step

CFG = at.AtmosphereConfig()


def blob(cfg, x0, z0, s=0.4):
    return np.exp(-0.5 * (((cfg.x[None, :] - x0) / s) ** 2 + ((cfg.z[:, None] - z0) / s) ** 2))


def run_numpy(cfg, phi, n_steps, dt, amps=np.ones(1)):
    def f(p, t):
        return at.tendency(p, at.forcing(cfg, np.array(t), amps), cfg)
    for n in range(n_steps):
        phi = rk4_step(f, phi, n * dt, dt)
    return phi


def test_rk4_converges_at_fourth_order():
    cfg = replace(CFG, nx=32, nz=16, lx=3.2, lz=1.6, amplitude=0.0, K=0.01)
    phi0 = blob(cfg, 1.6, 0.8, 0.3)
    T = 0.8
    ref = run_numpy(cfg, phi0, 128, T / 128)
    errors = [np.abs(run_numpy(cfg, phi0, n, T / n) - ref).max() for n in (8, 16, 32)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(ratios > 13) and np.all(ratios < 19), (errors, ratios)


@pytest.mark.parametrize("u,w", [(1.0, 0.12), (-0.7, -0.2), (0.5, 0.0)])
def test_compiled_kernel_matches_numpy_reference(u, w):
    cfg = replace(CFG, u=u, w=w, pulse_jitter=0.3)
    rng = np.random.default_rng(1)
    phi0 = rng.random((cfg.nz, cfg.nx))
    sim = at.simulate(cfg, 40, 1, phi0=phi0, rng=3)
    expected = run_numpy(cfg, phi0, 40, cfg.dt, sim.amplitudes)
    np.testing.assert_allclose(sim.final, expected, rtol=0, atol=1e-12)


def test_blob_leaving_at_the_right_reenters_at_the_left():
    cfg = replace(CFG, w=0.0, K=0.0, damping=0.0, sponge=0.0, amplitude=0.0)
    phi0 = blob(cfg, 12.0, 2.5)
    n_steps = 150  # travels u * 3.0 = 3 units: from x = 12 across the edge to x = 2 (mod 13)
    sim = at.simulate(cfg, n_steps, 1, phi0=phi0)
    col = sim.final.sum(axis=0)
    angle = 2 * np.pi * cfg.x / cfg.lx
    centre = (np.angle(np.sum(col * np.exp(1j * angle))) % (2 * np.pi)) * cfg.lx / (2 * np.pi)
    assert centre == pytest.approx((12.0 + cfg.u * n_steps * cfg.dt) % cfg.lx, abs=0.05)
    assert sim.final[:, :20].sum() > 50 * sim.final[:, 60:100].sum()   # it is at the left now
    # no source, no sink, periodic + no-flux walls: content is conserved to round-off
    assert np.ptp(sim.budget.C) < 1e-12 * sim.budget.C[0]


def test_budget_closes_over_the_default_run():
    sim = at.simulate(CFG, 2000, 10)
    b = sim.budget
    assert b.acc_in[-1] > 0 and b.acc_loss[-1] > 0
    # the lecture's rectangle-rule budget closes to within 1% of what was injected
    assert b.relative_residual < 0.01
    # with the RK4 stage weights the conservative scheme closes to round-off
    assert abs(b.residual_rk4) < 1e-10 * b.acc_in[-1]
    assert np.all(np.isfinite(sim.snapshots))


def test_field_reaches_a_steady_state():
    # identical pulses: C(t) settles into a periodic equilibrium (jittered pulses only add noise)
    sim = at.simulate(replace(CFG, pulse_jitter=0.0), 3000, 10)
    b = sim.budget
    period = int(round(CFG.pulse_period / CFG.dt))
    windows = b.C[-5 * period:].reshape(5, period).mean(axis=1)   # mean C per pulse period
    early = b.C[period:2 * period].mean()
    assert np.ptp(windows) < 0.03 * windows.mean()                 # stabilised
    assert windows.mean() > 1.5 * early                             # after a real spin-up
    # injection and loss balance at equilibrium: over the last 5 periods, in ≈ out
    n = 5 * period
    gain = b.acc_in[-1] - b.acc_in[-n - 1]
    loss = b.acc_loss[-1] - b.acc_loss[-n - 1]
    assert loss == pytest.approx(gain, rel=0.1)


def test_ensemble_members_differ_and_have_their_own_budgets():
    sim = at.simulate(CFG, 400, 4, n_members=3, rng=5)
    assert sim.snapshots.shape == (3, 4, CFG.nz, CFG.nx)
    assert sim.budget.C.shape == (3, 401)
    assert not np.allclose(sim.snapshots[0], sim.snapshots[1])
    np.testing.assert_array_less(np.abs(sim.budget.residual_rk4), 1e-10)


def test_stability_limit_is_real_and_refused_above_it():
    s = at.stability_numbers(CFG)
    assert s["amplification"] <= 1 and s["dt_max"] > CFG.dt
    stable = replace(CFG, dt=0.9 * s["dt_max"])
    assert np.all(np.isfinite(at.simulate(stable, 300, 1, phi0=np.random.default_rng(0).random((50, 130))).final))
    unstable = replace(CFG, dt=1.3 * s["dt_max"])
    with pytest.raises(ValueError, match=r"Courant number .* choose dt <="):
        at.simulate(unstable, 10)
    # bypass the check: the scheme really does blow up there
    rng = np.random.default_rng(0)
    phi = rng.random((1, CFG.nz, CFG.nx)) - 0.5
    n = 600
    out = [np.empty((1, n + 1)) for _ in range(5)]
    snaps, final = np.empty((1, 1, CFG.nz, CFG.nx)), np.empty((1, CFG.nz, CFG.nx))
    _kernels.rk4_run(phi, n, unstable.dt, np.zeros((1, 2 * n + 1)), at.source(CFG),
                     at.sponge_profile(CFG), CFG.u, CFG.w, CFG.K, CFG.dx, CFG.dz,
                     np.array([n]), snaps, *out, final)
    assert not np.all(np.abs(final) < 1e3)


@pytest.mark.parametrize("kwargs,match", [
    ({"nx": -5}, "nx must be an integer >= 8"),
    ({"dt": 0.0}, "dt must be > 0"),
    ({"K": -1.0}, "K must be >= 0"),
    ({"pulse_duty": 1.5}, r"pulse_duty must be in \(0, 1\]"),
    ({"u": float("nan")}, "u must be a finite number"),
])
def test_bad_configs_say_what_is_allowed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        at.AtmosphereConfig(**kwargs)


def test_bad_run_arguments_say_what_is_allowed():
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        at.simulate(CFG, 0)
    with pytest.raises(ValueError, match="n_snapshots must be between 1 and n_steps"):
        at.simulate(CFG, 10, 20)
    with pytest.raises(ValueError, match="phi0 must have shape"):
        at.simulate(CFG, 10, 1, phi0=np.zeros((5, 5)))


def test_parallel_ensemble_forecast_matches_simulate_and_numpy():
    cfg = at.AtmosphereConfig(nx=24, nz=12)
    rng = np.random.default_rng(3)
    phi0 = rng.random((3, cfg.nz, cfg.nx))
    strength = np.array([0.5, 1.0, 1.7])
    out = at.forecast(cfg, phi0, 30, t0=0.3, strength=strength)
    # the budget-monitoring simulate() path, one member at a time (same forcing)
    for m in range(3):
        ref = phi0[m]
        amps = np.ones(10)
        f = lambda p, tt: at.tendency(p, strength[m] * at.forcing(cfg, np.array(tt), amps), cfg)  # noqa: E731
        for n in range(30):
            ref = rk4_step(f, ref, 0.3 + n * cfg.dt, cfg.dt)
        np.testing.assert_allclose(out[m], ref, rtol=1e-10, atol=1e-12)
    assert not np.shares_memory(out, phi0)
    np.testing.assert_array_equal(at.forecast(cfg, phi0[0], 0), phi0[0])
    with pytest.raises(ValueError, match="phi0 must have shape"):
        at.forecast(cfg, np.zeros((2, 5, 5)), 3)
