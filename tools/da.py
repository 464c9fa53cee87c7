"""The DA methods lab: ``run_da_experiment`` and ``compare_da_methods`` on Lorenz-63 and Lorenz-96.

A twin experiment (truth and observations made by :func:`toyda.experiment.twin`) or the student's
own files (:mod:`tools.dafiles`) are assimilated by a method of :mod:`toyda.da`; the scores are
DAPPER's (rmse_a, rmse_f, spread_a) plus CRPS, and innovation statistics that need no truth.
Left-out settings take the DAPPER reference setups (sakov2012 for Lorenz-63, sakov2008 for
Lorenz-96) and their tuned method settings (:data:`PRESETS`).

One science path serves the tool, ``reproduce.py`` and sweeps: :func:`setup` (model, experiment,
observations), :func:`make` (the method), :func:`assimilate` (run + :func:`evaluate`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pprint
import re
import time
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError, field_validator

from tools import daplots
from tools.base import Example, RunContext, ToolArgs, ToolError, ToolSpec, Workspace, arg
from tools.dafiles import read_observations, resolve_path, state_names, write_csv
from toyda.da import METHODS, make_method
from toyda.da.diagnostics import rank_histogram, score
from toyda.experiment import Experiment, Observations, get_model, twin

MethodName = Literal["oi", "3dvar", "extkf", "enkf", "etkf", "letkf", "4dvar", "pf"]
SETTINGS = ("n_members", "inflation", "localisation_radius", "window", "background", "b_scale")
"""The tool arguments that are method settings (fields of the toyda method dataclasses)."""
ENSEMBLE = ("enkf", "etkf", "letkf", "pf")

REFERENCE = {
    "lorenz63": {"setup": "sakov2012", "dt": 0.01, "obs_every": 25, "sigma_o": math.sqrt(2.0), "burn_in": 16.0},
    "lorenz96": {"setup": "sakov2008", "dt": 0.05, "obs_every": 1, "sigma_o": 1.0, "burn_in": 20.0},
}
"""DAPPER's reference twin setups (all components observed, 1,000 observation times)."""
N_OBS = 1000
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "lorenz63": {"3dvar": {"background": "climatology", "b_scale": 0.1}, "extkf": {"inflation": 4.0},
                 "enkf": {"n_members": 10, "inflation": 1.04}, "etkf": {"n_members": 10, "inflation": 1.02},
                 "4dvar": {"window": 1, "background": "climatology", "b_scale": 0.1}, "pf": {"n_members": 100}},
    "lorenz96": {"3dvar": {"background": "identity", "b_scale": 0.02}, "extkf": {"inflation": 1.05},
                 "enkf": {"n_members": 40, "inflation": 1.06}, "etkf": {"n_members": 24, "inflation": 1.013},
                 "letkf": {"n_members": 7, "inflation": 1.04, "localisation_radius": 4.0},
                 "4dvar": {"window": 1, "background": "identity", "b_scale": 0.02}, "pf": {"n_members": 100}},
}
"""Tuned settings used where the student leaves them out (DAPPER's suggested tuning for the setups)."""
DAPPER = {("lorenz63", "oi"): 1.25, ("lorenz63", "3dvar"): 1.03, ("lorenz63", "extkf"): 0.9,
          ("lorenz63", "enkf"): 0.65, ("lorenz63", "etkf"): 0.60, ("lorenz63", "4dvar"): 0.79,
          ("lorenz63", "pf"): 0.35, ("lorenz96", "oi"): 0.95, ("lorenz96", "3dvar"): 0.41,
          ("lorenz96", "extkf"): 0.24, ("lorenz96", "enkf"): 0.22, ("lorenz96", "etkf"): 0.18,
          ("lorenz96", "letkf"): 0.22}
"""DAPPER's published rmse_a on the reference setups with the preset settings."""
MAX_SECONDS = 90.0
"""An interactive call is refused when its estimated run time exceeds this."""
_OBSERVED = re.compile(r"^(all|[xyz]{1,3}|every:[1-9]\d*|random:[1-9]\d*)$")


def _model_arg():
    return arg("lorenz63", description="the model: 'lorenz63' (3 variables) or 'lorenz96' (40 variables, F = 8)",
               phrases=("model", "system"),
               values={"lorenz63": ["lorenz 63", "lorenz-63", "l63", "butterfly", "lorenz63"],
                       "lorenz96": ["lorenz 96", "lorenz-96", "l96", "40 variables", "lorenz96"]})


class SetupArgs(ToolArgs):
    """The experiment every method shares (twin, or the student's files)."""

    model: Literal["lorenz63", "lorenz96"] = _model_arg()
    dt: float | None = arg(None, gt=0, le=0.1, phrases=("time step", "model time step"),
                           description="model time step (model time units); default 0.01 (L63) or 0.05 (L96)")
    obs_every: int | None = arg(None, ge=1, le=500, phrases=("observation interval", "obs every", "steps between observations"),
                                description="model steps between observation times (twin only); default 25 (L63) or 1 (L96)")
    observed: str | None = arg(None, phrases=("observed components", "observe only"),
                               description="observed components (twin only): 'all'; L63 letters such as 'x' or 'xz'; "
                                           "'every:k' every k-th variable; 'random:m' m random components per time")
    sigma_o: float | None = arg(None, gt=0, le=100, phrases=("obs error", "observation error", "observation noise", "σo"),
                                description="observation-error standard deviation, R = σo² I (model units); "
                                            "default √2 (L63) or 1 (L96)")
    n_obs: int | None = arg(None, ge=2, le=20_000, phrases=("observation times", "cycles", "number of observations"),
                            description=f"number of observation times (twin only); default {N_OBS}")
    burn_in: float | None = arg(None, ge=0, phrases=("burn-in", "spin-up"),
                                description="model time units not scored at the start; default 16 (L63) or 20 (L96), "
                                            "or a quarter of the experiment when that leaves less than half scored")
    seed: int = arg(0, ge=0, le=2**31 - 1, description="random seed (truth, observation noise, ensembles)")
    observations: str | None = arg(None, phrases=("my observations", "my own observations", "observation file", "my data"),
                                   description="the student's observations: a .csv (time + one column per variable, empty "
                                               "= not observed) or .nc file; default a twin experiment")
    truth: str | None = arg(None, phrases=("truth file", "true state"),
                            description="optional truth file of the same form (may start at t = 0) to score against")

    @field_validator("observed")
    @classmethod
    def _observed(cls, v: str | None) -> str | None:
        if v is not None and not _OBSERVED.match(v.strip().lower()):
            raise ValueError("observed must be 'all', letters of 'xyz' (Lorenz-63), 'every:k' or 'random:m'")
        return v if v is None else v.strip().lower()


class DAArgs(SetupArgs):
    method: MethodName = arg("etkf", phrases=("method", "filter", "scheme"),
                             description="the DA method: oi, 3dvar, extkf, enkf, etkf, letkf (lorenz96), 4dvar, pf",
                             values={"oi": ["optimal interpolation", "optinterp"], "3dvar": ["3d-var", "3d var", "3dvar"],
                                     "extkf": ["extended kalman filter", "ekf", "extkf"],
                                     "enkf": ["enkf", "ensemble kalman filter", "stochastic enkf", "perturbed observations"],
                                     "etkf": ["etkf", "ensemble transform kalman filter", "square-root enkf", "sqrt enkf"],
                                     "letkf": ["letkf", "local ensemble transform", "localised etkf"],
                                     "4dvar": ["4d-var", "4d var", "4dvar", "four-dimensional variational"],
                                     "pf": ["particle filter", "pf", "bootstrap filter", "sequential monte carlo"]})
    n_members: int | None = arg(None, ge=2, le=2000, phrases=("ensemble size", "members", "particles", "N"),
                                description="ensemble members / particles (enkf, etkf, letkf, pf); default the preset")
    inflation: float | None = arg(None, ge=1, le=1000, phrases=("inflation", "multiplicative inflation", "covariance inflation"),
                                  description="multiplicative inflation of the forecast covariance (>= 1; enkf, etkf, letkf, extkf)")
    localisation_radius: float | None = arg(None, gt=0, le=100, phrases=("localization radius", "localisation radius", "loc radius"),
                                            description="LETKF localisation radius (grid points, Gaspari-Cohn; lorenz96 only)")
    window: int | None = arg(None, ge=1, le=20, phrases=("assimilation window", "window length"),
                             description="4D-Var window (observation intervals, >= 1)")
    background: Literal["climatology", "identity"] | None = arg(
        None, description="B of 3dvar/4dvar: 'climatology' (b_scale × climatological covariance) or 'identity' (b_scale × I)",
        values={"climatology": ["climatological b", "climatology"], "identity": ["identity", "diagonal b"]})
    b_scale: float | None = arg(None, gt=0, le=100, phrases=("b scale", "background scale"),
                                description="scale of B for 3dvar/4dvar (DAPPER's xB)")


def _defaults(args: SetupArgs) -> dict[str, Any]:
    ref = REFERENCE[args.model]
    return {"dt": args.dt or ref["dt"], "sigma_o": args.sigma_o or ref["sigma_o"]}


def setup(args: SetupArgs, workspace: Workspace | None = None, resolved: dict[str, str] | None = None
          ) -> tuple[Experiment, Observations]:
    """The model, the experiment description and the observations (twin or files) of ``args``."""
    ref, d = REFERENCE[args.model], _defaults(args)
    model = get_model(args.model, dt=d["dt"])
    if args.truth and not args.observations:
        raise ToolError("truth= needs observations= (the file of observations it belongs to); leave truth out for a twin")
    if args.observations:
        given = [k for k in ("obs_every", "observed", "n_obs") if getattr(args, k) is not None]
        if given:
            raise ToolError(f"{', '.join(given)} cannot be set with observations=: the observation times and gaps come "
                            "from the file; leave them out")
        workspace = workspace or Workspace(_home())
        paths = {k: resolve_path(getattr(args, k), workspace, k) for k in ("observations", "truth") if getattr(args, k)}
        if resolved is not None:
            resolved.update({k: str(v) for k, v in paths.items()})
        obs = read_observations(paths["observations"], model.n, model.dt, truth=paths.get("truth"))
        obs_every, observed, n_obs = int(np.median(obs.steps)), "all", len(obs.t)
    else:
        obs_every, observed, n_obs = args.obs_every or ref["obs_every"], args.observed or "all", args.n_obs or N_OBS
        if args.model == "lorenz96" and re.fullmatch(r"[xyz]+", observed):
            raise ToolError(f"observed={observed!r} names Lorenz-63 components; for lorenz96 use 'all', 'every:k' or 'random:m'")
        if observed.startswith("random:") and int(observed[7:]) > model.n:
            raise ToolError(f"observed={observed!r}: at most {model.n} components of {args.model} can be observed")
        obs = None
    span = float(n_obs * obs_every * model.dt) if obs is None else float(obs.t[-1])
    burn_in = args.burn_in if args.burn_in is not None else (ref["burn_in"] if ref["burn_in"] <= span / 2 else span / 4)
    if burn_in >= span:
        raise ToolError(f"burn_in={burn_in:g} leaves nothing to score: the experiment ends at t = {span:g}; "
                        "choose a burn_in below it or more n_obs")
    exp = Experiment(model=model, obs_every=obs_every, observed=observed, sigma_o=d["sigma_o"], n_obs=n_obs,
                     burn_in=float(burn_in), seed=args.seed)
    return exp, (obs if obs is not None else twin(exp))


def _home():
    from tools.settings import get_settings  # noqa: PLC0415

    return get_settings().home


def settings_of(args: DAArgs) -> dict[str, Any]:
    """The method's settings: the ones given, the preset for the rest; refuses settings that do not apply."""
    if args.method == "letkf" and args.model != "lorenz96":
        raise ToolError("method='letkf' localises by the distance between grid points, which lorenz63 does not have: "
                        "use model='lorenz96', or method='etkf' on lorenz63")
    if args.localisation_radius is not None and args.model != "lorenz96":
        raise ToolError(f"localisation_radius applies only to model='lorenz96' (a distance in grid points); {args.model} "
                        "has no distance between its variables: leave it out")
    takes = {f.name for f in dataclasses.fields(METHODS[args.method])}
    given = {k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None}
    for name in given:
        if name not in takes:
            users = [m for m, cls in METHODS.items() if name in {f.name for f in dataclasses.fields(cls)}]
            raise ToolError(f"{name} does not apply to method={args.method!r}; it is a setting of {', '.join(users)} "
                            f"(the settings of {args.method} are: {', '.join(sorted(takes & set(SETTINGS))) or 'none'})")
    preset = {k: v for k, v in PRESETS[args.model].get(args.method, {}).items() if k in takes}
    return preset | given


def make(args: DAArgs):
    """The toyda method object of ``args`` (a ToolError naming the setting when toyda refuses it)."""
    settings = settings_of(args)
    try:
        return make_method(args.method, **settings), settings
    except ValueError as exc:
        raise ToolError(f"method={args.method!r}: {exc}") from None


def truncated(result):
    """The result cut at its divergence index (all time arrays ``[:diverged_at]``); unchanged otherwise."""
    k = result.diverged_at
    if k is None or len(result.x_a) <= k:
        return result
    cut = {f.name: getattr(result, f.name)[:k] for f in dataclasses.fields(result)
           if isinstance(getattr(result, f.name), np.ndarray) and f.name != "info"}
    return dataclasses.replace(result, **cut)


def evaluate(result, obs: Observations, burn_in: float) -> dict[str, float | int]:
    """The metrics of one run: DAPPER's scores when there is truth, innovation statistics always.

    Innovations over the scored times and observed components (NaN-free): mean and RMS of
    ``d_f = y − x_f`` (obs minus forecast) and ``d_a = y − x_a``, and Desroziers et al. (2005)'s
    ``σo² ≈ E[d_a d_f]``. A diverged run is scored over its times before the divergence (all of them
    when the burn-in was not reached); metrics that cannot be computed are left out, never NaN.
    """
    result = truncated(result)
    K = len(result.x_a)
    t = obs.t[:K]
    out: dict[str, float | int] = {"n_obs": int(len(obs.t))}
    if result.diverged_at is not None:
        out["diverged_at_t"] = float(obs.t[min(result.diverged_at, len(obs.t) - 1)])
    if K == 0:
        return out
    if not (t > burn_in).any():
        burn_in = -1.0
        out["scored_from_t"] = float(t[0])
    keep = t > burn_in
    out["n_scored"] = int(keep.sum())
    if obs.x_true is not None:
        part = dataclasses.replace(obs, t=t, y=obs.y[:K], steps=obs.steps[:K], x_true=obs.x_true[:K])
        out |= {k: float(v) for k, v in score(result, part, burn_in).items() if np.isfinite(v)}
    y = obs.y[:K][keep]
    d_f, d_a = y - result.x_f[keep], y - result.x_a[keep]
    seen = np.isfinite(y)
    if seen.any():
        d_f, d_a = d_f[seen], d_a[seen]
        out |= {"omf_mean": float(d_f.mean()), "omf_rms": float(np.sqrt(np.mean(d_f**2))),
                "oma_mean": float(d_a.mean()), "oma_rms": float(np.sqrt(np.mean(d_a**2))),
                "sigma_o_desroziers": float(np.sqrt(max(float(np.mean(d_a * d_f)), 0.0)))}
    return {k: v for k, v in out.items() if not isinstance(v, float) or np.isfinite(v)}


def method_rng(seed: int) -> np.random.Generator:
    """The method's random stream, apart from the twin's (which :func:`twin` draws from the seed)."""
    return np.random.default_rng([seed, 1])


def assimilate(exp: Experiment, obs: Observations, method) -> tuple[Any, dict[str, Any]]:
    """Run ``method`` on the observations; the result and its metrics (with ``wall_s``)."""
    start = time.perf_counter()
    result = truncated(method.assimilate(exp, obs, method_rng(exp.seed)))
    wall = time.perf_counter() - start
    return result, evaluate(result, obs, exp.burn_in) | {"wall_s": wall}


def estimate_seconds(exp: Experiment, obs: Observations, method: str, settings: dict[str, Any]) -> float:
    """A rough run-time estimate (this 2-core machine): model steps × members, plus per-analysis work."""
    n, steps, K = exp.model.n, int(np.sum(obs.steps)), len(obs.t)
    N = settings.get("n_members", 1)
    members = {"oi": 0, "3dvar": 1, "extkf": n + 1, "4dvar": 60}.get(method, N)
    analysis = {"letkf": n * 4e-5, "4dvar": 5e-3, "extkf": 2e-5 + 1e-8 * n**3}.get(method, 3e-5 + 2e-9 * N * N * n)
    return steps * (1.5e-5 + 4e-9 * members * n) + K * analysis


def check_size(exp: Experiment, obs: Observations, method: str, settings: dict[str, Any], files: bool) -> float:
    """Refuse an experiment too long for an interactive call, saying how to shorten it."""
    est = estimate_seconds(exp, obs, method, settings)
    if est > MAX_SECONDS:
        k = max(int(len(obs.t) * MAX_SECONDS / est), 1)
        how = [f"a file with at most {k} observation times" if files else f"fewer n_obs (at most about {k})"]
        if "n_members" in settings:
            how.append(f"fewer n_members (now {settings['n_members']})")
        if method == "4dvar":
            how.append("a shorter window")
        if not files and exp.obs_every > 1:
            how.append(f"a smaller obs_every (now {exp.obs_every})")
        raise ToolError(f"this experiment is too long for an interactive call (about {est:.0f} s estimated for "
                        f"{method} over {len(obs.t)} observation times; the cap is {MAX_SECONDS:.0f} s): use "
                        + ", or ".join(how))
    return est


def describe(args: DAArgs, settings: dict[str, Any]) -> str:
    """'etkf (n_members=10, inflation=1.02)'."""
    inner = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items())
    return f"{args.method} ({inner})" if inner else args.method


def _short(label: str) -> str:
    """'etkf (n_members=10, inflation=1.02)' -> 'etkf\nN=10, infl=1.02' for a figure's tick label."""
    for long, short in (("n_members", "N"), ("inflation", "infl"), ("localisation_radius", "radius"),
                        ("background=", ""), ("b_scale", "b")):
        label = label.replace(long, short)
    return label.replace(" (", "\n").rstrip(")")


def _setup_words(args: SetupArgs, exp: Experiment, obs: Observations) -> str:
    src = (f"your observations {args.observations}" + (" with truth" if obs.x_true is not None else " (no truth)")
           if args.observations else f"a twin ({REFERENCE[args.model]['setup']}-style: obs every {exp.obs_every} steps, "
                                     f"observed {exp.observed})")
    return (f"{args.model} (dt {exp.model.dt:g}), {src}, {len(obs.t)} observation times, σo = {exp.sigma_o:.4g}, "
            f"burn-in {exp.burn_in:g}")


def _draw(ctx: RunContext, exp: Experiment, obs: Observations, result, metrics: dict[str, Any], label: str) -> None:
    K = len(result.x_a)
    if K == 0:
        return
    x_true = obs.x_true[:K] if obs.x_true is not None else None
    keep = obs.t[:K] > exp.burn_in if (obs.t[:K] > exp.burn_in).any() else np.ones(K, bool)
    ranks = rank_histogram(result.E_a[keep], x_true[keep]) if result.E_a is not None and x_true is not None else None
    figures = daplots.experiment_figures(
        obs.t[:K], obs.y[:K], result.x_a, result.x_f, state_names(exp.model.n), f"{label} on {exp.model.name}",
        sigma_o=exp.sigma_o, burn_in=exp.burn_in, x_true=x_true, E_a=result.E_a, spread_a=result.spread_a,
        ranks=ranks, t_div=metrics.get("diverged_at_t"))
    for name, fig in figures.items():
        ctx.save_figure(fig, name)


def _save_twin(ctx: RunContext, exp: Experiment, obs: Observations) -> None:
    """The twin's observations and truth as CSV, in the format observations=/truth= read."""
    write_csv(ctx.file("observations.csv"), obs.t, obs.y)
    if obs.x_true is not None:
        t0 = [0.0] if obs.x0_true is not None else []
        x0 = [obs.x0_true] if obs.x0_true is not None else []
        write_csv(ctx.file("truth.csv"), np.concatenate([t0, obs.t]), np.concatenate([x0, obs.x_true]) if x0 else obs.x_true)


def _verdict(m: dict[str, Any], sigma_o: float, ref: float | None) -> str:
    if "rmse_a" in m:
        s = f"rmse_a {m['rmse_a']:.3f} ({m['rmse_a'] / sigma_o:.2f} σo), rmse_f {m.get('rmse_f', float('nan')):.3f}"
        if "spread_a" in m:
            s += f", spread_a {m['spread_a']:.3f} (spread/error {m['spread_a'] / max(m['rmse_a'], 1e-12):.2f})"
        if "crps_a" in m:
            s += f", CRPS {m['crps_a']:.3f}"
        if ref is not None:
            s += f"; DAPPER's published value for this setup is {ref:g}"
        return s
    return "no truth, so no RMSE" if "diverged_at_t" not in m else "no analysis before the divergence to score"


def _innovation_words(m: dict[str, Any], sigma_o: float) -> str:
    if "sigma_o_desroziers" not in m:
        return ""
    est = m["sigma_o_desroziers"]
    verdict = ("consistent with it" if abs(est / sigma_o - 1) < 0.15 else
               "so the given σo looks too large" if est < sigma_o else "so the given σo looks too small")
    return (f" Innovations: obs−forecast mean {m['omf_mean']:+.3f}, RMS {m['omf_rms']:.3f}; obs−analysis mean "
            f"{m['oma_mean']:+.3f}, RMS {m['oma_rms']:.3f}; Desroziers σo estimate {est:.3f} against the given "
            f"{sigma_o:.3g}, {verdict}.")


def _reference(args: DAArgs, exp: Experiment, settings: dict[str, Any]) -> float | None:
    plain = (args.observations is None and args.dt is None and args.obs_every is None and args.sigma_o is None
             and args.observed in (None, "all") and exp.n_obs >= N_OBS)
    same = settings == {k: v for k, v in PRESETS[args.model].get(args.method, {}).items() if k in settings}
    return DAPPER.get((args.model, args.method)) if plain and same else None


def run_da_experiment(args: DAArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Run one classical data-assimilation method on Lorenz-63 or Lorenz-96 and score it.

    Methods: 'oi' (optimal interpolation), '3dvar', 'extkf' (extended Kalman filter), 'enkf'
    (stochastic ensemble Kalman filter), 'etkf' (square-root ensemble transform KF), 'letkf'
    (localised ETKF, lorenz96), '4dvar' (strong-constraint, window in observation intervals), 'pf'
    (bootstrap particle filter). A twin experiment by default (DAPPER's reference setups: L63 dt 0.01,
    obs every 25 steps, σo = √2; L96 dt 0.05, obs every step, σo = 1; 1,000 observation times), or the
    student's own observations= (CSV/NetCDF, gaps allowed) with an optional truth=. Settings left out
    take tuned presets (e.g. ETKF N=10 inflation 1.02 on L63; LETKF N=7, radius 4 on L96).

    Use it for "run an EnKF on Lorenz-63 with 20 members", "4D-Var on Lorenz-96", "assimilate my own
    observations". Returns rmse_a, rmse_f (time means after burn-in, as DAPPER), spread_a and crps_a
    for ensembles, wall_s, and innovation statistics (obs−forecast, obs−analysis, Desroziers σo) that
    need no truth; figures of the analysis against truth and observations, error and spread, the rank
    histogram and, for Lorenz-96, a Hovmöller diagram. A diverging method is reported with the time.
    """
    method, settings = make(args)
    exp, obs = setup(args, ctx.workspace, ctx.resolved)
    check_size(exp, obs, args.method, settings, bool(args.observations))
    _record(ctx, args, exp)
    ctx.resolved.update(settings)
    if not args.observations:
        _save_twin(ctx, exp, obs)
    label = describe(args, settings)
    ctx.progress(0.1, f"assimilating {len(obs.t)} observation times with {args.method}")
    result, m = assimilate(exp, obs, method)
    ctx.progress(0.85, "drawing figures")
    _draw(ctx, exp, obs, result, m, label)
    div = (f" It DIVERGED at t = {m['diverged_at_t']:.4g}: the figures and scores cover the times before."
           if "diverged_at_t" in m else "")
    summary = (f"{label} on {_setup_words(args, exp, obs)}: {_verdict(m, exp.sigma_o, _reference(args, exp, settings))}; "
               f"{m['wall_s']:.2f} s.{div}{_innovation_words(m, exp.sigma_o)}")
    return summary, {"model": args.model, "method": args.method, **m, "sigma_o": exp.sigma_o,
                     "diverged": int("diverged_at_t" in m)}


class CompareArgs(SetupArgs):
    methods: str = arg("3dvar,etkf,pf", phrases=("methods", "compare", "versus"),
                       description="the methods and their settings, all on the same truth and observations: a comma list "
                                   "such as '3dvar,etkf,pf', or JSON '[{\"method\": \"etkf\", \"n_members\": 10, "
                                   "\"inflation\": 1.02}, {\"method\": \"3dvar\"}]' (at most 8; settings as in run_da_experiment)")


MAX_METHODS = 8


def parse_methods(text: str) -> list[dict[str, Any]]:
    """``'3dvar, etkf and the particle filter'`` or a JSON list into ``[{"method": ..., settings...}]``."""
    from tools.base import values_of  # noqa: PLC0415

    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolError(f"methods: not valid JSON ({exc.msg} at character {exc.pos}); write e.g. "
                            '[{"method": "etkf", "n_members": 10}, {"method": "3dvar"}]') from None
    else:
        items = [p for p in re.split(r"\s*(?:,|;|\band\b|\bvs\.?|\bversus\b)\s*", text.lower()) if p.strip()]
    aliases = {alias: name for name, words in values_of(DAArgs, "method").items() for alias in [name, *words]}
    entries = []
    for i, item in enumerate(items if isinstance(items, list) else [None]):
        if isinstance(item, str):
            key = re.sub(r"^(?:the|a|an)\s+", "", item.strip().lower())
            if key not in aliases:
                raise ToolError(f"methods[{i}] = {item!r} is not a method; the methods are: {', '.join(METHODS)}")
            item = {"method": aliases[key]}
        if not isinstance(item, dict) or "method" not in item:
            raise ToolError(f"methods[{i}] must be a method name or an object with a 'method' key, got {item!r}")
        extra = set(item) - {"method", *SETTINGS}
        if extra:
            raise ToolError(f"methods[{i}]: unknown setting(s) {', '.join(sorted(extra))}; allowed: method, {', '.join(SETTINGS)}")
        entries.append(item)
    if not 1 <= len(entries) <= MAX_METHODS:
        raise ToolError(f"methods: give between 1 and {MAX_METHODS} methods, got {len(entries)}")
    return entries


def method_args(args: SetupArgs, entries: list[dict[str, Any]]) -> list[DAArgs]:
    """One validated :class:`DAArgs` per entry, on the shared setup; a ToolError naming the entry otherwise."""
    shared = args.model_dump(exclude={"methods"})
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(DAArgs.model_validate(shared | entry))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))!r} = {e.get('input')!r} is not allowed: {e['msg']}"
                                 for e in exc.errors())
            raise ToolError(f"methods[{i}] {entry}: {problems} (see run_da_experiment for each setting)") from None
    return out


def compare_da_methods(args: CompareArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Compare several DA methods on the SAME truth and observations (Lorenz-63 or Lorenz-96).

    `methods` lists them with their settings, e.g. '3dvar,etkf,pf' or
    '[{"method": "3dvar"}, {"method": "etkf", "n_members": 10, "inflation": 1.02}]'; the experiment
    arguments are those of run_da_experiment (twin by default, or observations=/truth= files).
    Use it for "compare 3D-Var, ETKF and the particle filter on Lorenz-96", "3D-Var vs 4D-Var", "which
    method is best for my data". Returns one table (rmse_a, rmse_f, spread, wall time per method; without
    truth the obs−forecast RMS ranks them) and one figure of rmse_a and wall time per method.
    """
    runs = [(a, *make(a)) for a in method_args(args, parse_methods(args.methods))]
    exp, obs = setup(args, ctx.workspace, ctx.resolved)
    total = sum(estimate_seconds(exp, obs, a.method, s) for a, _, s in runs)
    if total > MAX_SECONDS:
        raise ToolError(f"these {len(runs)} methods together are too long for an interactive call (about {total:.0f} s "
                        f"estimated; the cap is {MAX_SECONDS:.0f} s): use fewer n_obs, fewer methods or fewer n_members")
    _record(ctx, args, exp)
    if not args.observations:
        _save_twin(ctx, exp, obs)
    rows, keys = [], []
    for i, (a, method, settings) in enumerate(runs):
        ctx.progress(0.05 + 0.85 * i / len(runs), f"{a.method} ({i + 1} of {len(runs)})")
        _, m = assimilate(exp, obs, method)
        key = a.method if a.method not in keys else f"{a.method}_{keys.count(a.method) + 1}"
        keys.append(a.method)
        rows.append((key, describe(a, settings), m))
    crit = "rmse_a" if obs.x_true is not None else "omf_rms"
    order = sorted(range(len(rows)), key=lambda i: ("diverged_at_t" in rows[i][2], rows[i][2].get(crit, math.inf)))
    labels = [_short(r[1]) for r in rows]
    ctx.save_figure(daplots.method_comparison(
        labels, [r[2].get(crit, 0.0) for r in rows], [r[2]["wall_s"] for r in rows], exp.sigma_o,
        f"{len(rows)} methods on the same {'truth and ' if obs.x_true is not None else ''}observations: "
        f"{args.model}, σo = {exp.sigma_o:.3g}", diverged=["diverged_at_t" in r[2] for r in rows],
        rmse_f=[r[2].get("rmse_f", 0.0) for r in rows] if crit == "rmse_a" else None,
        score_name="analysis RMSE (rmse_a)" if crit == "rmse_a" else "RMS obs − forecast (omf_rms)"), "comparison")
    metrics: dict[str, Any] = {"model": args.model, "n_methods": len(rows), "sigma_o": exp.sigma_o, "criterion": crit}
    for key, _, m in rows:
        for name in ("rmse_a", "rmse_f", "spread_a", "crps_a", "omf_rms", "sigma_o_desroziers", "wall_s", "diverged_at_t"):
            if name in m:
                metrics[f"{name}_{key}"] = m[name]
    best, worst = rows[order[0]], rows[order[-1]]
    metrics |= {"best_method": best[0], f"best_{crit}": best[2].get(crit, 0.0)}
    table = "\n".join(f"| {label} | " + " | ".join(f"{m[c]:.3f}" if c in m else "–" for c in (crit, "rmse_f", "spread_a"))
                      + f" | {m['wall_s']:.2f} |" + (f" diverged at t = {m['diverged_at_t']:.3g}" if "diverged_at_t" in m else "")
                      for _, label, m in (rows[i] for i in order))
    gap = (f", {worst[2][crit] / max(best[2][crit], 1e-12):.2f}× lower than {'the worst, ' if len(rows) > 2 else ''}"
           f"{worst[1]} ({worst[2][crit]:.3f})"
           if len(rows) > 1 and crit in worst[2] and crit in best[2] else "")
    summary = (f"On {_setup_words(args, exp, obs)}, the best by {crit} is {best[1]}: {best[2].get(crit, float('nan')):.3f} "
               f"({best[2].get(crit, 0.0) / exp.sigma_o:.2f} σo){gap}.\n"
               f"| method | {crit} | rmse_f | spread_a | wall_s |\n|---|---|---|---|---|\n{table}")
    return summary, metrics


def _record(ctx: RunContext, args: SetupArgs, exp: Experiment) -> None:
    """Write the defaults that were filled in into the run record, so reproduce.py is exact."""
    ctx.resolved.update({"dt": exp.model.dt, "sigma_o": exp.sigma_o, "burn_in": exp.burn_in})
    if not args.observations:
        ctx.resolved.update({"obs_every": exp.obs_every, "observed": exp.observed, "n_obs": exp.n_obs})


def _script(record: dict[str, Any], methods: list[tuple[str, dict[str, Any]]]) -> str:
    """A reproduce.py that calls toyda directly: model, experiment, observations, method(s), scores."""
    r = record
    if r.get("observations"):
        truth = f", truth={r['truth']!r}" if r.get("truth") else ""
        data = (f"obs = read_observations({r['observations']!r}, model.n, model.dt{truth})  # your files, checked\n"
                f"exp = Experiment(model=model, obs_every=int(np.median(obs.steps)), observed='all', sigma_o={r['sigma_o']!r},\n"
                f"                 n_obs=len(obs.t), burn_in={r['burn_in']!r}, seed={r['seed']!r})\n")
    else:
        data = (f"exp = Experiment(model=model, obs_every={r['obs_every']!r}, observed={r['observed']!r}, "
                f"sigma_o={r['sigma_o']!r},\n                 n_obs={r['n_obs']!r}, burn_in={r['burn_in']!r}, "
                f"seed={r['seed']!r})\nobs = twin(exp)  # truth from the model, y = x + N(0, σo²) where observed\n")
    return (
        "import time\n\nimport numpy as np\n\n"
        "from tools.da import evaluate  # rmse_a/rmse_f/spread_a/crps_a (toyda.da.diagnostics) + innovation statistics\n"
        "from tools.dafiles import read_observations\n"
        "from toyda.da import make_method\n"
        "from toyda.experiment import Experiment, get_model, twin\n\n"
        f"model = get_model({r['model']!r}, dt={r['dt']!r})\n{data}\n"
        f"for name, settings in {pprint.pformat(methods, sort_dicts=False)}:\n"
        "    method = make_method(name, **settings)\n"
        "    start = time.perf_counter()\n"
        f"    result = method.assimilate(exp, obs, np.random.default_rng([{r['seed']!r}, 1]))  # the method's own stream\n"
        "    wall_s = time.perf_counter() - start\n"
        "    print(f'{name} {settings}: wall_s = {wall_s:.3f}')\n"
        "    for key, value in evaluate(result, obs, exp.burn_in).items():\n"
        "        print(f'{name}: {key} = {value}')\n"
    )


def reproduce_run(record: dict[str, Any]) -> str:
    """reproduce.py of run_da_experiment."""
    args = DAArgs.model_validate(record)
    return _script(record, [(args.method, settings_of(args))])


def reproduce_compare(record: dict[str, Any]) -> str:
    """reproduce.py of compare_da_methods."""
    args = CompareArgs.model_validate(record)
    return _script(record, [(a.method, settings_of(a)) for a in method_args(args, parse_methods(args.methods))])


_METHOD_WORDS = (r"\benkf\b|\betkf\b|\bletkf\b|ensemble kalman|ensemble transform|particle filter|bootstrap filter"
                 r"|\b4d-? ?var\b|four[- ]dimensional variational|extended kalman|\bekf\b|\bextkf\b|optimal interpolation"
                 r"|locali[sz]ation radius|inflation")
TOOLS = (
    ToolSpec(
        "run_da_experiment", run_da_experiment, DAArgs,
        keywords=((6, _METHOD_WORDS), (6, r"lorenz[- ]?96|\bl-?96\b"),
                  (6, r"\b3d-? ?var\b.*\blorenz|\blorenz.*\b3d-? ?var\b|da method|assimilation method"
                      r"|my own (?:lorenz[- ]?\d\d )?(?:observations|data)|observations=|\.csv\b")),
        topic="data assimilation methods EnKF 4D-Var particle filter",
        figures=("timeseries", "error_spread", "rank_histogram", "hovmoeller"),
        examples=(
            Example("run an EnKF on lorenz 63 with 20 members", {"method": "enkf", "model": "lorenz63", "n_members": 20}),
            Example("run the LETKF on Lorenz-96 with 7 members and localization radius 4",
                    {"method": "letkf", "model": "lorenz96", "n_members": 7, "localisation_radius": 4.0}),
            Example("4D-Var on Lorenz-63 with a window of 2 observation intervals", {"method": "4dvar", "window": 2}),
            Example("particle filter with 200 particles on lorenz 63", {"method": "pf", "n_members": 200}),
            Example("run 3D-Var on my own Lorenz-63 observations obs.csv", {"method": "3dvar", "observations": "obs.csv"}),
            Example("ETKF with inflation 1.05 and observation error 2", {"method": "etkf", "inflation": 1.05, "sigma_o": 2.0}),
        ),
        reproduce=reproduce_run,
    ),
    ToolSpec(
        "compare_da_methods", compare_da_methods, CompareArgs,
        keywords=((7, r"\bcompar\w*\b.*(?:" + _METHOD_WORDS + r"|\b3d-? ?var\b|\bpf\b|da methods|assimilation methods|filters)"),
                  (7, r"(?:\b3d-? ?var|\b4d-? ?var|enkf|etkf|letkf|particle filter)\b.*\b(?:vs\.?|versus|against|or)\b.*"
                      r"(?:\b3d-? ?var|\b4d-? ?var|enkf|etkf|letkf|particle filter|\bpf)\b"),
                  (7, r"difference between (?:3d-? ?var|4d-? ?var|enkf|etkf|the enkf|a particle filter)")),
        topic="3D-Var 4D-Var EnKF particle filter comparison",
        figures=("comparison",),
        examples=(
            Example("compare 3dvar, etkf and the particle filter on lorenz 96", {"methods": "3dvar,etkf,pf", "model": "lorenz96"}),
            Example("Explain the difference between 3D-Var and 4D-Var and show me", {"methods": "3dvar,4dvar"}),
            Example("compare ETKF with 10 members and inflation 1.02 against 3D-Var",
                    {"methods": '[{"method": "etkf", "n_members": 10, "inflation": 1.02}, {"method": "3dvar"}]'}),
        ),
        reproduce=reproduce_compare,
    ),
)


def experiment_metrics(args: DAArgs, workspace: Workspace | None = None) -> dict[str, Any]:
    """The science of one run_da_experiment call without figures or files (for sweeps): its metrics."""
    method, settings = make(args)
    exp, obs = setup(args, workspace)
    check_size(exp, obs, args.method, settings, bool(args.observations))
    return assimilate(exp, obs, method)[1]
