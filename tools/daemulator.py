"""``run_da_experiment(forecast_model="emulator")``: the learned Lorenz-63 emulator as the forecast model.

The same method runs on the same observations with the true model and with the network of a
``train_lorenz63_emulator`` run (:mod:`toyda.emulated`): the fine-tuned model of the checkpoint,
the same run's model before rollout fine-tuning when it was saved beside it, and the fine-tuned
model with the inflation retuned for model error (the best rmse_a of a few factors; the
obs−forecast RMS when there is no truth). The summary puts the numbers side by side; one figure
shows the analyses against the truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from tools import daplots
from tools.base import RunContext, ToolError
from tools.dafiles import state_names
from tools.dasetup import MAX_SECONDS, N_OBS, REFERENCE, DAArgs, assimilate, estimate_seconds
from toyda.da import make_method
from toyda.experiment import Experiment, Observations

EMULATOR_FILE = "emulator.pt"
ONE_STEP_FILE = "emulator_one_step.pt"
RETUNE = (1.15, 1.35)
"""the inflation given (or preset) times these is also tried for the emulator's model error"""
CALL_S = {"tl": 6e-4, "plain": 4e-4}
"""seconds per network step of an ensemble (plain) or with its Jacobian (tl) on the 2-core machine"""


def _load(args: DAArgs, ctx: RunContext) -> list[tuple[str, str, Any]]:
    """``[(key, words, Emulator)]``: the checkpoint's model, and its one-step sibling when there is one."""
    from toyda.emulator import Emulator  # noqa: PLC0415

    path = ctx.find("checkpoint", args.checkpoint, EMULATOR_FILE, "train_lorenz63_emulator", "trained Lorenz-63 emulator")
    try:
        em = Emulator.load(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 — any unreadable file is the student's argument, said as such
        raise ToolError(f"checkpoint={args.checkpoint or str(path)!r} is not a Lorenz-63 emulator ({exc}); give the "
                        "run name or emulator.pt path of a train_lorenz63_emulator result") from None
    words = (f"fine-tuned with {em.rollout_steps}-step rollouts" if em.rollout_steps else "one-step training only")
    models = [("emulator", f"emulator ({words})", em)]
    sibling = path.parent / ONE_STEP_FILE
    if em.rollout_steps and sibling.is_file():
        models.append(("emulator_one_step", "emulator before fine-tuning", Emulator.load(str(sibling), device="cpu")))
    return models


def _on_clock(exp: Experiment, obs: Observations, em) -> tuple[Experiment, Observations]:
    from toyda.emulated import emulated_model, on_emulator_clock  # noqa: PLC0415

    try:
        obs_e = on_emulator_clock(obs, exp.model.dt, em.dt)
    except ValueError as exc:
        raise ToolError(f"checkpoint: {exc}") from None
    ratio = int(round(exp.obs_every * exp.model.dt / em.dt))
    exp_e = dataclasses.replace(exp, model=emulated_model(em, exp.model.x0_variance), obs_every=max(ratio, 1),
                                observed="all")            # the mask is the observations' own (NaN = not seen)
    return exp_e, obs_e


def _seconds(exp_e: Experiment, obs_e: Observations, method: str, settings: dict[str, Any]) -> float:
    calls = float(np.sum(obs_e.steps))
    if method == "4dvar":
        return calls * CALL_S["tl"] * (settings.get("outer_loops", 8) + 2)
    if method == "extkf":
        return calls * CALL_S["tl"]
    return calls * CALL_S["plain"] * max(1.0, settings.get("n_members", 1) / 20)


def planned_seconds(args: DAArgs, settings: dict[str, Any]) -> float:
    """Estimated seconds of the emulator runs, from the arguments alone (for ``ToolSpec.cost``): the method
    with the fine-tuned and the one-step emulator and with the retuned inflations, one network step per
    model step (the emulator's dt is only known once its checkpoint is read; :func:`run` checks again)."""
    ref = REFERENCE[args.model]
    calls = float((args.n_obs or N_OBS) * (args.obs_every or ref["obs_every"]))
    kind = "tl" if args.method in ("extkf", "4dvar") else "plain"
    loops = settings.get("outer_loops", 8) + 2 if args.method == "4dvar" else 1
    per_run = calls * CALL_S[kind] * loops * max(1.0, settings.get("n_members", 1) / 20)
    return per_run * (2 + (len(RETUNE) if "inflation" in settings else 0))

def check(args: DAArgs) -> None:
    """Refuse what the emulator cannot do before anything runs."""
    if args.forecast_model == "emulator" and args.model != "lorenz63":
        raise ToolError(f"forecast_model='emulator' needs model='lorenz63': the emulator is a Lorenz-63 network "
                        f"(got model={args.model!r})")
    if args.checkpoint and args.forecast_model != "emulator":
        raise ToolError("checkpoint= is the emulator to use as the forecast model: set forecast_model='emulator' "
                        "too, or leave checkpoint out")


def run(args: DAArgs, ctx: RunContext, exp: Experiment, obs: Observations, method, settings: dict[str, Any],
        label: str, draw: Callable) -> tuple[str, dict[str, Any]]:
    """The method with the true model and with the emulator(s) on the same observations."""
    check(args)
    models = _load(args, ctx)
    runs = [(key, words, *_on_clock(exp, obs, em)) for key, words, em in models]
    retune = [round(settings["inflation"] * k, 3) for k in RETUNE] if "inflation" in settings else []
    exp_e, obs_e = runs[0][2], runs[0][3]
    est = (estimate_seconds(exp, obs, args.method, settings)
           + _seconds(exp_e, obs_e, args.method, settings) * (len(runs) + len(retune)))
    if est > MAX_SECONDS:
        raise ToolError(f"the emulator runs are too long for an interactive call (about {est:.0f} s estimated for "
                        f"{args.method} over {len(obs.t)} observation times, {int(np.sum(obs_e.steps))} network steps "
                        f"each; the cap is {MAX_SECONDS:.0f} s): use fewer n_obs (e.g. {max(int(len(obs.t) * MAX_SECONDS / est), 2)})")
    ctx.progress(0.1, f"{args.method} with the true model")
    res_true, m_true = assimilate(exp, obs, method)
    results: dict[str, tuple[str, Any, dict[str, Any]]] = {}
    for i, (key, words, e, o) in enumerate(runs):
        ctx.progress(0.2 + 0.5 * i / len(runs), f"{args.method} with the {words}")
        results[key] = (words, *assimilate(e, o, method))
    crit = "rmse_a" if obs.x_true is not None else "omf_rms"
    best = (settings.get("inflation"), results["emulator"][2])
    for f in retune:
        ctx.progress(0.7, f"inflation {f:g} for model error")
        m = assimilate(exp_e, obs_e, make_method(args.method, **(settings | {"inflation": f})))[1]
        if "diverged_at_t" not in m and crit in m and (crit not in best[1] or m[crit] < best[1][crit]):
            best = (f, m)
    main = results["emulator"]
    draw(ctx, exp_e, obs_e, main[1], main[2], f"{label} with the {main[0]}")
    if obs.x_true is not None:
        fig = daplots.emulator_vs_true(obs.t, obs.y, obs.x_true, res_true.x_a,
                                       {w: r.x_a for w, r, _ in results.values()}, state_names(3),
                                       f"{label}: analyses with the true model and the learned emulator",
                                       burn_in=exp.burn_in)
        ctx.save_figure(fig, "emulator_vs_true")
    metrics: dict[str, Any] = {"model": args.model, "method": args.method, "forecast_model": "emulator",
                               **main[2], "sigma_o": exp.sigma_o, "diverged": int("diverged_at_t" in main[2]),
                               "emulator_dt": exp_e.model.dt, "network_steps_per_interval": exp_e.obs_every,
                               "emulator_rollout_steps": int(models[0][2].rollout_steps)}
    for name in ("rmse_a", "rmse_f", "spread_a", "omf_rms", "wall_s"):
        if name in m_true:
            metrics[f"{name}_true"] = m_true[name]
    if "emulator_one_step" in results:
        for name in ("rmse_a", "omf_rms", "wall_s"):
            if name in results["emulator_one_step"][2]:
                metrics[f"{name}_emulator_one_step"] = results["emulator_one_step"][2][name]
    if retune and crit in best[1]:
        metrics[f"{crit}_emulator_retuned"], metrics["inflation_retuned"] = best[1][crit], float(best[0])
    tried = sorted({settings["inflation"], *retune}) if retune else []
    return _summary(label, crit, metrics, results, tried, exp_e), metrics


def _summary(label, crit, m, results, tried, exp_e) -> str:
    words = results["emulator"][0]
    head = (f"{label} with the learned {words.replace('emulator ', '', 1)} emulator as the forecast model (dt "
            f"{exp_e.model.dt:g}, {exp_e.obs_every} network steps per observation interval) on the same observations "
            f"as the true model: ")
    if crit not in m or f"{crit}_true" not in m:
        return head + ("the emulator run DIVERGED" if "diverged_at_t" in m else "no score") + \
            f" (true model: {m.get(crit + '_true', float('nan')):.3f})."
    s = (f"{crit} {m[crit]:.3f} with the emulator against {m[crit + '_true']:.3f} with the true model "
         f"({m[crit] / max(m[crit + '_true'], 1e-12):.2f}×)")
    if f"{crit}_emulator_one_step" in m:
        s += f"; without the rollout fine-tuning {m[crit + '_emulator_one_step']:.3f}"
    if "inflation_retuned" in m:
        s += (f"; with inflation retuned for model error (best of {', '.join(f'{f:g}' for f in tried)}): inflation "
              f"{m['inflation_retuned']:g}, {crit} {m[crit + '_emulator_retuned']:.3f}")
    div = f" The emulator run DIVERGED at t = {m['diverged_at_t']:.4g}." if "diverged_at_t" in m else ""
    return head + s + f" (σo = {m['sigma_o']:.3g})." + div
