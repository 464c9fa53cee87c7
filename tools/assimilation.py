"""Tools for 3D-Var and ORIGEN on the oscillator and on Lorenz-63."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from tools import plots, words
from tools.base import Example, Prediction, RunContext, ToolArgs, ToolError, ToolSpec, arg
from toyda import lorenz63 as l63
from toyda import oscillator as osc
from toyda.metrics import rmse

_O = osc.DEFAULTS
_L = l63.DEFAULTS
EMULATOR_STATES = 2000
"""states a reconstruction needs for train_lorenz63_emulator to learn from it (its default length here)"""
SEED = arg(0, ge=0, le=2**31 - 1, description="random seed (observation pattern and noise)", phrases=words.SEED)
MIN_SIGMA = 1e-6
"""smallest error standard deviation a run accepts: below it σ² is too small for B or R to stay
positive definite next to O(1) states (the analysis would be NaN or the covariance singular)"""


def check_sigmas(args: ToolArgs, *names: str) -> None:
    """Refuse error standard deviations too small to give a positive-definite B or R, naming the argument."""
    for name in names:
        value = getattr(args, name)
        if value < MIN_SIGMA:
            raise ToolError(f"argument {name!r} = {value:g} is too small: σ² would make the "
                            f"{'background' if name == 'sigma_b' else 'observation'}-error covariance "
                            f"{'B' if name == 'sigma_b' else 'R'} numerically singular; use {name} >= {MIN_SIGMA:g}")


class CycleArgs(ToolArgs):
    n_steps: int = arg(_O.n_steps, ge=2, le=10_000, description="time steps (one revolution of the circle)",
        phrases=words.TIME_STEPS)
    sigma_b: float = arg(_O.sigma_b, gt=0, le=10, description="background-error standard deviation σ_b (B = σ_b² I)",
        phrases=words.SIGMA_B)
    sigma_o: float = arg(_O.sigma_o, gt=0, le=10, description="observation-error standard deviation σ_o (R = σ_o²)",
        phrases=words.SIGMA_O)
    obs_pattern: Literal["random", "alternating", "x1", "x2"] = arg(
        _O.obs_pattern, description="which component is observed at each step",
        values={"alternating": ("alternating", "alternate", "alternately", "take turns"),
                "x1": ("only x1", "just x1", "x1 only", "observe x1", "observing x1"),
                "x2": ("only x2", "just x2", "x2 only", "observe x2", "observing x2"),
                "random": ("random pattern", "randomly", "random component", "at random")})
    covariance_update: bool = arg(False, description="Kalman covariance update B ← (I−KH)B after each analysis",
        phrases=words.COVARIANCE_UPDATE, values=words.FIXED_B)
    q: float = arg(0.0, ge=0, le=1, description="model-error variance q added to B after each step with the "
                                                "covariance update, B ← (I−KH)B + q I (units of x², 0 = none)",
        phrases=words.MODEL_ERROR)
    inflation: float = arg(1.0, ge=1, le=3, description="multiplicative inflation ρ of B after each step with the "
                                                        "covariance update, B ← ρ(I−KH)B + q I (1 = none)",
        phrases=words.INFLATION)
    seed: int = SEED


COLLAPSED = 0.1
"""a last gain below this fraction of the first one: the filter has stopped listening (divergence)"""


def run_3dvar_cycle(args: CycleArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Run a 3D-Var assimilation cycle on the oscillator (a point moving on the unit circle)
    with one scalar observation per step (x1 or x2), the gain K = BHᵀ(HBHᵀ+R)⁻¹ and the
    persistence model x_b(k+1) = x_a(k). Optionally with the Kalman covariance update
    B ← ρ(I−KH)B + q I, where the model-error variance q and the inflation ρ keep B from
    collapsing (without them the gain decays and the filter diverges).

    Use it for "run a 3D-Var cycle", to see how analyses are pulled toward the observations,
    how the unobserved component benefits through cycling, how σ_b and σ_o set the gain, and
    why a covariance update needs model error or inflation (filter divergence).
    Returns analysis and background RMSE against the truth and the time-series figure with the
    gain and the B variances per step.
    """
    check_sigmas(args, "sigma_b", "sigma_o")
    if not args.covariance_update and (args.q > 0 or args.inflation > 1):
        raise ToolError(f"q={args.q:g} and inflation={args.inflation:g} act on the covariance update only: "
                        "set covariance_update=true as well (with fixed B there is no B to inflate)")
    rng = np.random.default_rng(args.seed)
    truth = osc.truth(args.n_steps)
    y, which = osc.observe(truth, args.obs_pattern, args.sigma_o, rng)
    cyc = osc.cycle_3dvar(y, which, args.sigma_b, args.sigma_o, covariance_update=args.covariance_update,
                          q=args.q, inflation=args.inflation)
    r_a, r_b = float(rmse(cyc.x_a, truth)), float(rmse(cyc.x_b, truth))
    r_comp = rmse(cyc.x_a, truth, axis=0)
    gain = np.abs(cyc.K).max(axis=1)                       # the gain on the observed component
    tail = max(1, args.n_steps // 10)
    gain_end = float(gain[-tail:].mean())
    g = args.sigma_b**2 / (args.sigma_b**2 + args.sigma_o**2)
    floor = args.sigma_o * np.sqrt(g / (2 - g))
    if args.covariance_update:
        extras = [f"q={args.q:g}"] * (args.q > 0) + [f"inflation ρ={args.inflation:g}"] * (args.inflation > 1)
        update = "with the covariance update" + (f" ({', '.join(extras)})" if extras else " (no model error)")
    else:
        update = "with fixed B"
    ctx.save_figure(plots.cycle_timeseries(
        truth, cyc.x_b, cyc.x_a, y, which,
        f"3D-Var cycle {update}: σ_b={args.sigma_b:g}, σ_o={args.sigma_o:g}, '{args.obs_pattern}' observations",
        gain=gain, B_var=np.diagonal(cyc.B, axis1=1, axis2=2), gain_fixed=g), "timeseries")
    metrics = {
        "rmse_analysis": r_a, "rmse_background": r_b, "rmse_x1": float(r_comp[0]), "rmse_x2": float(r_comp[1]),
        "gain_first": float(gain[0]), "gain_last": float(gain[-1]), "gain_end_mean": gain_end,
        "B_var_last_x1": float(cyc.B[-1, 0, 0]), "B_var_last_x2": float(cyc.B[-1, 1, 1]),
        "rmse_floor_fixed_B": float(floor),
        "n_obs_x1": int(np.sum(which == 0)), "n_obs_x2": int(np.sum(which == 1)),
    }
    start = (f"3D-Var cycle {update} over {args.n_steps} steps (σ_b={args.sigma_b:g}, σ_o={args.sigma_o:g}, "
             f"{args.obs_pattern} pattern): analysis RMSE {r_a:.3f} vs background RMSE {r_b:.3f} "
             f"(x1 {r_comp[0]:.3f}, x2 {r_comp[1]:.3f}).")
    if not args.covariance_update:
        note = (f" The gain on the observed component stays at g = σ_b²/(σ_b²+σ_o²) = {g:.2f}: every analysis lets "
                f"in that fraction of the observation error, so (the lecture's plateau argument) the RMSE cannot "
                f"fall below about σ_o√(g/(2−g)) = {floor:.3f} however long you cycle (the lag of persistence "
                "adds to that). Letting B adapt (covariance_update with a model error q, so that B does not "
                "collapse) makes the gain follow the actual uncertainty instead.")
        return start + note, metrics
    fixed = osc.cycle_3dvar(y, which, args.sigma_b, args.sigma_o)
    r_fixed = float(rmse(fixed.x_a, truth))
    metrics["rmse_analysis_fixed_B"] = r_fixed
    metrics["diverged"] = int(gain_end < COLLAPSED * gain[0])
    compare = f"On the same observations fixed B gives {r_fixed:.3f}."
    if metrics["diverged"]:
        note = (f" The gain collapsed from {gain[0]:.2f} to {gain_end:.3f} and B shrank to "
                f"{cyc.B[-1, 0, 0]:.2g}/{cyc.B[-1, 1, 1]:.2g} (x1/x2): the filter trusts its own B and stops "
                "listening to the observations while the truth moves on (filter divergence; persistence is a "
                f"wrong model and nothing says so). {compare} Add q or inflation, e.g. "
                "\"3D-Var with the covariance update and q 0.02\".")
    else:
        note = (f" The gain went from {gain[0]:.2f} to {gain_end:.2f} and stays there: model error / inflation keep "
                f"B at about {cyc.B[-tail:, 0, 0].mean():.2g} (x1) and {cyc.B[-tail:, 1, 1].mean():.2g} (x2), "
                f"where what an observation removes balances what a step adds. {compare}")
    return start + note, metrics


def cycle_metrics(rmse: np.ndarray, sigma_o: float) -> dict[str, float]:
    """The ORIGEN numbers both systems report: RMSE after cycle 0 and after the last cycle, and
    the last in units of the observation error."""
    return {"rmse_cycle0": float(rmse[0]), "rmse_final": float(rmse[-1]),
            "rmse_final_over_sigma_o": float(rmse[-1] / sigma_o)}


class OrigenOscillatorArgs(ToolArgs):
    n_cycles: int = arg(_O.n_cycles, ge=1, le=500, description="ORIGEN cycles (cycle 0 = persistence 3D-Var)",
        phrases=words.N_CYCLES)
    n_steps: int = arg(_O.n_steps, ge=2, le=10_000, description="time steps of the trajectory",
        phrases=words.TIME_STEPS)
    sigma_b: float = arg(_O.sigma_b, gt=0, le=10, description="initial background-error standard deviation σ_b",
        phrases=words.SIGMA_B)
    sigma_o: float = arg(_O.sigma_o, gt=0, le=10, description="observation-error standard deviation σ_o",
        phrases=words.SIGMA_O)
    covariance_update: bool = arg(False, description="update B ← (I−KH)B per time index across cycles (Kalman-style)",
        phrases=words.COVARIANCE_UPDATE, values=words.FIXED_B)
    seed: int = SEED


def run_origen_oscillator(args: OrigenOscillatorArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """ORIGEN on the oscillator: iterative 3D-Var reconstruction of the whole trajectory over
    cycles from noisy, partial observations (a new random pattern each cycle), with fixed B
    or with the Kalman-style covariance update B ← (I−KH)B. Also shows the two-round
    sequential assimilation (x1 everywhere, then x2).

    Use it for the lecture's two messages: with fixed B the RMSE per cycle plateaus (3D-Var
    keeps letting observation error in), with the covariance update it converges. Both
    variants are run on the same observations and compared in the RMSE figure.
    """
    check_sigmas(args, "sigma_b", "sigma_o")
    truth = osc.truth(args.n_steps)
    runs = {}
    for update in (False, True):
        ctx.progress(0.4 * update, f"reconstruction {'with' if update else 'without'} covariance update")
        runs[update] = osc.origen_reconstruction(truth, args.n_cycles, args.sigma_b, args.sigma_o,
                                                 covariance_update=update, rng=np.random.default_rng(args.seed))
    rec = runs[args.covariance_update]
    rounds = osc.sequential_rounds(truth, args.sigma_b, args.sigma_o, rng=np.random.default_rng(args.seed))
    ctx.progress(0.8, "drawing figures")
    ctx.save_figure(plots.rmse_per_cycle(
        {"fixed B (3D-Var)": runs[False].rmse, "covariance update B ← (I−KH)B": runs[True].rmse}, args.sigma_o,
        "ORIGEN on the oscillator: RMSE of the reconstructed trajectory per cycle"), "rmse_per_cycle")
    show = sorted({0, 1, 2, args.n_cycles // 4, args.n_cycles // 2, args.n_cycles - 1} & set(range(args.n_cycles)))
    ctx.save_figure(plots.oscillator_trajectories(truth, rec.x_a, show), "trajectories")
    ctx.save_figure(plots.cycle_timeseries(
        truth, None, rec.x_a[-1], rec.y, rec.which,
        f"Final cycle ({'covariance update' if args.covariance_update else 'fixed B'}): "
        f"reconstruction and the last cycle's noisy partial observations"), "final_cycle")
    ctx.save_figure(plots.sequential_rounds(truth, rounds.x_a1, rounds.x_a2, rounds.y1, rounds.y2), "sequential_rounds")
    fixed, upd = runs[False].rmse, runs[True].rmse
    metrics = {
        **cycle_metrics(rec.rmse, args.sigma_o),
        "rmse_final_fixed_B": float(fixed[-1]), "rmse_final_updated_B": float(upd[-1]),
        "rounds_rmse_x1_after_round1": float(rounds.rmse[0, 0]), "rounds_rmse_x2_after_round1": float(rounds.rmse[0, 1]),
        "rounds_rmse_x2_after_round2": float(rounds.rmse[1, 1]),
    }
    chosen = "with the covariance update" if args.covariance_update else "with fixed B"
    summary = (
        f"ORIGEN on the oscillator, {args.n_cycles} cycles {chosen} (σ_o={args.sigma_o:g}): RMSE {rec.rmse[0]:.3f} "
        f"in cycle 0 → {rec.rmse[-1]:.3f} in the final cycle ({rec.rmse[-1] / args.sigma_o:.2f} σ_o). "
        f"On the same observations {_compare_variants(fixed, upd)} Two sequential rounds (x1, then x2 observed "
        f"everywhere, σ_o={args.sigma_o:g}) bring the x2 error from {rounds.rmse[0, 1]:.3f} to {rounds.rmse[1, 1]:.3f}."
    )
    return summary, metrics


def _trend(rmse: np.ndarray) -> str:
    """How the RMSE per cycle ends, from the means of its last two quarters: 'plateaus at',
    'keeps falling to' or 'rises to' (changes within 10% count as a plateau: the cycles are noisy)."""
    q = max(1, len(rmse) // 4)
    before, last = float(np.mean(rmse[-2 * q:-q])), float(np.mean(rmse[-q:]))
    change = (last - before) / max(before, 1e-12)
    return "keeps falling to" if change < -0.1 else "rises to" if change > 0.1 else "plateaus at"


def _compare_variants(fixed: np.ndarray, upd: np.ndarray) -> str:
    """The fixed-B vs covariance-update comparison, said from the numbers (not from the lecture's expectation)."""
    if len(fixed) < 4:
        return (f"fixed B ends at {fixed[-1]:.3f} and the covariance update at {upd[-1]:.3f} ({len(fixed)} cycles are "
                "too few to tell a plateau from convergence; try 20 or more).")
    better = "lower than" if upd[-1] < 0.95 * fixed[-1] else "higher than" if upd[-1] > 1.05 * fixed[-1] else "about"
    return (f"fixed B {_trend(fixed)} {fixed[-1]:.3f} while the covariance update {_trend(upd)} {upd[-1]:.3f} "
            f"({better} fixed B).")


class OrigenLorenzArgs(ToolArgs):
    n_steps: int = arg(EMULATOR_STATES, ge=10, le=20_000,
                       description="model time steps of the trajectory (the default is long enough to train "
                                   "train_lorenz63_emulator on)",
        phrases=words.TIME_STEPS)
    dt: float = arg(_L.dt, gt=0, le=0.05, description="model time step (Lorenz time units)",
        phrases=words.DT)
    n_cycles: int = arg(_L.n_cycles, ge=1, le=200, description="ORIGEN cycles (cycle 0 = persistence 3D-Var)",
        phrases=words.N_CYCLES)
    sigma_o: float = arg(_L.sigma_o, gt=0, le=20, description="observation-error standard deviation per observed component",
        phrases=words.SIGMA_O)
    covariance_update: bool = arg(True, description="B ← Pᵃ per time index across cycles (Kalman-style)",
        phrases=words.COVARIANCE_UPDATE, values=words.FIXED_B)
    seed: int = SEED
    variant: Literal["dalab", "lecture"] = arg(
        "dalab", phrases=["variant", "as in the notebook", "lecture version"],
        values={"dalab": ["dalab", "default", "fast"], "lecture": ["lecture", "notebook", "faithful", "original"]},
        description="dalab (default): cycle 0 persistence 3D-Var, subsets per time and cycle, the arguments above; "
                    "lecture: the notebook exactly (solve_ivp truth dt 0.1 to t=20 from (0,1,20), x_b=0, Gaussian "
                    "B0, one subset per iteration, Joseph-form B←Pᵃ, 20 iterations, σo 1, its MLP emulator); "
                    "the other arguments except seed are then ignored")


def _origen_lecture(args: OrigenLorenzArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    from toyda import origen_lecture as ol  # noqa: PLC0415

    rng = np.random.default_rng(args.seed)
    t, truth = ol.truth()
    rec = ol.reconstruct(truth, rng)
    ctx.progress(0.2, "training the notebook's emulator (10,000 + 2,000 epochs)")
    predict, _ = ol.train_emulator(rec.x_a[-1], seed=args.seed)
    starts, fc = ol.forecasts(predict, truth)
    ref = np.stack([truth[starts + k] for k in range(fc.shape[1])], axis=1)
    fc_rmse = np.sqrt(np.mean((fc - ref) ** 2, axis=(0, 2)))
    np.savez_compressed(ctx.file("origen_l63.npz"), x_true=truth, x_a=rec.x_a[-1], x_a_cycle0=rec.x_a[0],
                        rmse=rec.rmse, t=t, dt=0.1, sigma_o=1.0)
    ctx.save_figure(plots.rmse_per_cycle({"ORIGEN reconstruction (lecture variant)": rec.rmse}, 1.0,
                                         "ORIGEN on Lorenz-63, lecture variant: RMSE per iteration"), "rmse_per_cycle")
    ctx.save_figure(plots.lorenz_timeseries(t, truth, rec.x_a[0], rec.x_a[-1], rec.y_last,
                                            "Lorenz-63 ORIGEN, lecture variant: 20 iterations, σ_o=1"), "timeseries")
    metrics = {**cycle_metrics(rec.rmse, 1.0), "variant": "lecture", "n_states": int(len(truth)),
               "forecast_rmse_lead1": float(fc_rmse[1]), "forecast_rmse_lead20": float(fc_rmse[-1])}
    summary = (f"ORIGEN on Lorenz-63, lecture variant (the notebook's method): RMSE {rec.rmse[0]:.3f} after "
               f"iteration 1 → {rec.rmse[-1]:.3f} after iteration 20 (the notebook reports about 0.66); subsets "
               f"{', '.join(rec.subsets)}. The notebook's MLP emulator, trained on the reconstruction, forecasts from "
               f"every 20th state with RMSE {fc_rmse[1]:.3f} after 1 step and {fc_rmse[-1]:.3f} after 20 steps "
               f"(2 time units).")
    return summary, metrics


def run_origen_lorenz63(args: OrigenLorenzArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """ORIGEN on Lorenz-63: reconstruct a chaotic trajectory from random partial observations
    (subsets x, y, z, xy, xz, yz drawn anew at every time and cycle) by iterating 3D-Var
    analyses over cycles with x_b ← x_a and the Kalman-style B ← Pᵃ. Saves the
    reconstruction (origen_l63.npz) that train_lorenz63_emulator learns from.

    Use it to see the reconstruction converge on a nonlinear system and before training the
    learned forecast model. Returns the RMSE per cycle and figures of the trajectories.
    variant="dalab" (default) is described above; variant="lecture" runs the lecture notebook's
    method exactly (one subset per iteration, x_b = 0, Gaussian B0, Joseph form, its emulator).
    """
    check_sigmas(args, "sigma_o")
    if args.variant == "lecture":
        return _origen_lecture(args, ctx)
    rng = np.random.default_rng(args.seed)
    x0 = l63.X0 + rng.standard_normal(3)
    truth = l63.simulate(x0, args.n_steps, args.dt)
    ctx.progress(0.1, f"{args.n_cycles} reconstruction cycles")
    rec = l63.origen_reconstruction(truth, args.n_cycles, args.sigma_o, rng,
                                    covariance_update=args.covariance_update)
    t = args.dt * np.arange(len(truth))
    np.savez_compressed(ctx.file("origen_l63.npz"), x_true=truth, x_a=rec.x_a[-1], x_a_cycle0=rec.x_a[0],
                        rmse=rec.rmse, t=t, dt=args.dt, sigma_o=args.sigma_o)
    ctx.progress(0.8, "drawing figures")
    ctx.save_figure(plots.rmse_per_cycle({"ORIGEN reconstruction": rec.rmse}, args.sigma_o,
                                         "ORIGEN on Lorenz-63: RMSE of the reconstruction per cycle"), "rmse_per_cycle")
    ctx.save_figure(plots.lorenz_timeseries(t, truth, rec.x_a[0], rec.x_a[-1], rec.y,
                                            f"Lorenz-63 ORIGEN: {args.n_cycles} cycles, σ_o={args.sigma_o:g}"),
                    "timeseries")
    ctx.save_figure(plots.lorenz_phase(truth, rec.x_a[0], rec.x_a[-1]), "phase_xz")
    metrics = {**cycle_metrics(rec.rmse, args.sigma_o), "variant": "dalab", "sigma_a_final": float(rec.sigma_a[-1]), "n_states": int(len(truth))}
    summary = (
        f"ORIGEN on Lorenz-63 (dalab variant) over {args.n_steps} steps (dt={args.dt:g}, t = 0…{t[-1]:.1f}) from random partial "
        f"observations with σ_o={args.sigma_o:g}: RMSE {rec.rmse[0]:.3f} after cycle 0 (persistence 3D-Var) → "
        f"{rec.rmse[-1]:.3f} after {args.n_cycles} cycles "
        f"({'with' if args.covariance_update else 'without'} B ← Pᵃ). Saved origen_l63.npz for the emulator."
    )
    return summary, metrics


def _explain_cycle(result: Any, question: str) -> str | None:
    """The 3D-Var cycle's own numbers for a question about them (gain, error)."""
    q = question.lower()
    a, m = result.args, result.metrics
    sb, so = float(a["sigma_b"]), float(a["sigma_o"])
    out = []
    if "gain" in q or "weight" in q or "trust" in q:
        g = m["gain_first"]
        out.append(
            f"The gain came out as {g:.3f} at the first step: K = σ_b²/(σ_b²+σ_o²) = {sb:g}²/({sb:g}²+{so:g}²) = "
            f"{sb * sb:.4g}/{sb * sb + so * so:.4g}. The background-error variance is {sb * sb / (so * so):.2g}× the "
            f"observation-error variance, so each analysis moves {100 * g:.0f}% of the way from the background to "
            f"the observation (variances, not standard deviations, set the weights).")
        if a.get("covariance_update"):
            out.append(f"With the covariance update B shrank after each analysis, so the gain fell to "
                       f"{m['gain_last']:.3f} by the last step.")
    if any(w in q for w in ("rmse", "error", "plateau", "good", "accura", "sigma", "σ", "converge")):
        out.append(f"The analysis RMSE was {m['rmse_analysis']:.3f}, {m['rmse_analysis'] / so:.2f} σ_o (σ_o = {so:g}), "
                   f"against {m['rmse_background']:.3f} for the background; x1 {m['rmse_x1']:.3f}, x2 {m['rmse_x2']:.3f}.")
    return " ".join(out) or None


def _explain_origen(result: Any, question: str) -> str | None:
    """An ORIGEN run's own numbers for a question about its error or convergence."""
    q = question.lower()
    if not any(w in q for w in ("rmse", "error", "plateau", "converge", "good", "cycle", "improv", "better")):
        return None
    m, so = result.metrics, float(result.args["sigma_o"])
    text = (f"The reconstruction error went from {m['rmse_cycle0']:.3f} after cycle 0 to {m['rmse_final']:.3f} after "
            f"the last cycle, {m['rmse_final_over_sigma_o']:.2f} σ_o (σ_o = {so:g}).")
    if "rmse_final_fixed_B" in m:
        text += (f" On the same observations fixed B ended at {m['rmse_final_fixed_B']:.3f} and the covariance "
                 f"update at {m['rmse_final_updated_B']:.3f}.")
    return text


def _below_sigma_o(result: Any) -> tuple[str, str]:
    r, so = result.metrics["rmse_analysis"], result.args["sigma_o"]
    return ("below" if r < so else "above"), f"the analysis RMSE came out {r:.3f} against σ_o = {so:g}"


CLIMATOLOGY_STD = 1 / np.sqrt(2)
"""standard deviation of one component of a point moving uniformly on the unit circle"""


def _unobserved_improves(result: Any) -> tuple[str, str]:
    m = result.metrics
    worse = max(m["rmse_x1"], m["rmse_x2"])
    tracked = worse < 0.5 * CLIMATOLOGY_STD
    return ("yes" if tracked else "no"), (
        f"x1 ended with RMSE {m['rmse_x1']:.3f} and x2 with {m['rmse_x2']:.3f}; knowing nothing (the circle's "
        f"climatology) would give {CLIMATOLOGY_STD:.3f}, so 'tracked' means below half of that")


def _update_beats_fixed(result: Any) -> tuple[str, str]:
    m = result.metrics
    fixed, upd = m["rmse_final_fixed_B"], m["rmse_final_updated_B"]
    return ("updated" if upd < fixed else "fixed"), (f"fixed B ended at RMSE {fixed:.3f}, the covariance update at "
                                                     f"{upd:.3f}")


def _origen_below_sigma_o(result: Any) -> tuple[str, str]:
    r, so = result.metrics["rmse_final"], result.args["sigma_o"]
    return ("below" if r < so else "above"), f"the final reconstruction RMSE came out {r:.3f} against σ_o = {so:g}"


# ----------------------------------------------------------------------------- cost estimates

def origen_oscillator_cost(args: OrigenOscillatorArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds): both variants keep every cycle's trajectory (2 components) and B
    per time index; about 2 µs per step and cycle (measured 1 µs), plus four figures."""
    size = 2 * args.n_cycles * args.n_steps
    return 64 * 2**20 + 8.0 * 4 * (size * 2 + 4 * args.n_steps), 6.0 + 2e-6 * size


LECTURE_COST = (0.5 * 2**30, 90.0)
"""(bytes, seconds) of the lecture variant, whose size is fixed: 200 states, 20 iterations and the
notebook's MLP trained for 10,000 + 2,000 full-batch epochs (torch working memory)"""


def origen_lorenz_cost(args: OrigenLorenzArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds): every cycle's reconstruction (3 components) and B per time index;
    about 10 µs per step and cycle (measured 7.5 µs), plus three figures (the lecture variant: fixed)."""
    if args.variant == "lecture":
        return LECTURE_COST
    size = args.n_cycles * args.n_steps
    return 64 * 2**20 + 8.0 * 4 * (3 * size + 9 * args.n_steps), 4.5 + 1e-5 * size


def cycle_cost(args: CycleArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds) of a 3D-Var cycle: a few (n_steps, 2) series, 2 µs a step, two figures."""
    return 64 * 2**20 + 8.0 * 16 * args.n_steps, 3.0 + 2e-6 * args.n_steps


TOOLS = (
    ToolSpec(
        "run_3dvar_cycle", run_3dvar_cycle, CycleArgs, cost=cycle_cost,
        keywords=((4, r"3d[- ]?var|3dvr|three[- ]dimensional variational|(?:assimilation|analysis|da) cycl"
                      r"|cycling|kalman gain|variational cycle"),
                  # the covariance update with model error / inflation is this tool's, not the DA methods' (6)
                  (6.5, r"^(?!.*lorenz)(?=.*(?:3d[- ]?var|assimilation cycle))(?=.*(?:cov(?:ariance)?[- ]?update"
                        r"|update (?:of )?b\b|b update|model[- ]error|\bq\b|process noise))")),
        topic="3D-Var cycle",
        figures=("timeseries",),
        explain=_explain_cycle,
        predictions=(
            Prediction("Will the analysis error (RMSE) end above or below the observation error σ_o = {sigma_o}?",
                       ("above", "below"), _below_sigma_o),
            Prediction("Only one component is observed at each step. Will the other, unobserved component still "
                       "be tracked well (yes or no)?", ("yes", "no"), _unobserved_improves),
        ),
        hints=(
            "Start from one analysis: with B = σ_b² I and one observed component, what fraction of the innovation "
            "does the gain K = σ_b²/(σ_b²+σ_o²) accept?",
            "Now cycle: the background of each step is the previous analysis (persistence). What happens to an "
            "observation error that enters the analysis at one step?",
            "Compare the analysis RMSE with σ_o and with the background RMSE; then try a smaller σ_b or switch on "
            "the covariance update and see what changes.",
        ),
        examples=(
            Example("run a 3D-Var cycle", {}),
            Example("Run a 3D-Var cycle with observation error 0.2", {"sigma_o": 0.2}),
            Example("3dvar with sigma_b 0.8 and obs error 0.3", {"sigma_b": 0.8, "sigma_o": 0.3}),
            Example("do a 3D-Var cycle with the Kalman covariance update", {"covariance_update": True}),
            Example("3D-Var cycle observing only x1 for 200 steps", {"obs_pattern": "x1", "n_steps": 200}),
            Example("3D-Var with the covariance update and model error q 0.02",
                    {"covariance_update": True, "q": 0.02}),
            Example("covariance update 3D-Var cycle with inflation 1.5", {"covariance_update": True, "inflation": 1.5}),
        ),
    ),
    ToolSpec(
        "run_origen_oscillator", run_origen_oscillator, OrigenOscillatorArgs, cost=origen_oscillator_cost,
        keywords=((4, r"origen|orign|iterat\w* (?:3d-?var )?reconstruction|oscillator cycles"
                      r"|reconstruct\w* (?:the )?(?:whole )?trajectory"),
                  (2, r"oscillator|oscilator|\bcircle\b")),
        topic="ORIGEN oscillator covariance update",
        explain=_explain_origen,
        predictions=(
            Prediction("After {n_cycles} cycles, which ends with the lower error: fixed B or the covariance update "
                       "(answer 'fixed' or 'updated')?", ("fixed", "updated"), _update_beats_fixed),
        ),
        hints=(
            "Each ORIGEN cycle uses the previous reconstruction as its background and fresh noisy observations. "
            "With fixed B, how much does each cycle trust the new observations?",
            "If the background is already better than the observations but the gain stays the same, what keeps "
            "entering the analysis every cycle?",
            "The covariance update B ← (I−KH)B shrinks B where observations were used: the gain falls and the "
            "error can keep falling. Run both and compare the RMSE per cycle.",
        ),
        figures=("rmse_per_cycle", "trajectories", "final_cycle", "sequential_rounds"),
        examples=(
            Example("run ORIGEN on the oscillator", {}),
            Example("origen with the covariance update for 40 cycles", {"covariance_update": True, "n_cycles": 40}),
            Example("iterative reconstruction of the oscillator trajectory with sigma_o 0.1", {"sigma_o": 0.1}),
        ),
    ),
    ToolSpec(
        "run_origen_lorenz63", run_origen_lorenz63, OrigenLorenzArgs, cost=origen_lorenz_cost,
        keywords=((5, r"lorenz|\bl-?63\b|butterfly|chaotic|lorentz|lornez"),),
        topic="ORIGEN Lorenz-63",
        explain=_explain_origen,
        predictions=(
            Prediction("Lorenz-63 is chaotic and only random subsets of x, y, z are observed. Will the final "
                       "reconstruction error be above or below σ_o = {sigma_o}?", ("above", "below"),
                       _origen_below_sigma_o),
        ),
        hints=(
            "Each time only a random subset (x, y, z, xy, …) is observed. How can an unobserved component still "
            "be corrected in one analysis?",
            "Across cycles, B ← Pᵃ carries what earlier cycles learned at each time. What does that do to the gain?",
            "Look at the RMSE per cycle and compare the last value with σ_o.",
        ),
        figures=("rmse_per_cycle", "timeseries", "phase_xz"),
        examples=(
            Example("run ORIGEN on Lorenz-63", {}),
            Example("reconstruct the lorenz 63 trajectory with 30 cycles", {"n_cycles": 30}),
            Example("origen on the butterfly attractor with observation error 2", {"sigma_o": 2.0}),
        ),
    ),
)
